package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
	"github.com/apikeyd/apikeyd/internal/rest"
)

// The OpenAPI document is the REST contract, and the end-to-end tests hold
// the server to it: every request the harness sends (testEnv.do, any client
// from testEnv.client or contractClient) goes through contractTransport,
// and every raw one (sendRaw) through the same check, which fails the test
// on a mismatch. A
// route, status, header or field the code has and the document lacks, or
// the reverse, fails whichever test meets it first.
//
// kin-openapi validates OpenAPI 3.1 documents since v0.153 (JSON Schema
// 2020-12 for schemas: type arrays with "null", const, …), which
// openapi3filter turns on by itself for a 3.1 document.

// outsideContract lists the paths the document does not describe:
// GraphQL has its own schema, /metrics the Prometheus formats, and the
// dashboard's pages and assets (/, /static/…) are HTML, CSS and JavaScript.
//
// Every other exchange of the end-to-end tests is checked, through
// contractClient or sendRaw, except these answers, which are not apikeyd's
// REST API (each test says so where it sends them):
//   - the protected service's answers behind nginx (TestNginxForwardAuth;
//     nginx's refusals, which relay apikeyd's, are checked as answers to
//     GET /auth/verify);
//   - the metrics listener's (METRICS_ADDR), which serves /metrics alone and
//     answers anything else with a bare NOT_FOUND or METHOD_NOT_ALLOWED,
//     checked against the Error schema (TestMetricsListener);
//   - net/http's own 431 to an oversized header, written before any handler
//     runs (TestHTTPServerHeaderCap), and a stand-in handler's answer that
//     must never arrive (TestHTTPServerSlowHandlerWriteTimeout).
//
// The browser of TestBrowser reaches apikeyd through a checking proxy.
var outsideContract = []string{"/graphql", "/playground", "/metrics", "/"}

// contract is the loaded document and a router over it.
type contract struct {
	doc    *openapi3.T
	router routers.Router
}

// loadContract loads and validates the document once per test binary.
var loadContract = sync.OnceValues(func() (*contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(rest.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.IsOpenAPI32OrLater() {
		return nil, fmt.Errorf("the document is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("invalid: %w", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &contract{doc: doc, router: router}, nil
})

func mustContract(t testing.TB) *contract {
	t.Helper()
	c, err := loadContract()
	if err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	return c
}

// contractClient returns a client like testEnv.client: every exchange,
// sent through base, is checked against the OpenAPI document.
func contractClient(t testing.TB, base http.RoundTripper) *http.Client {
	return &http.Client{Transport: &contractTransport{t: t, base: base, c: mustContract(t)}}
}

// contractTransport sends requests through base and checks every exchange
// against the OpenAPI document, failing t on a mismatch.
type contractTransport struct {
	t    testing.TB
	base http.RoundTripper
	c    *contract
}

// RoundTrip implements http.RoundTripper. It buffers both bodies so that
// they can be checked and still read by the caller.
func (ct *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		reqBody, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	send := req.Clone(req.Context())
	send.Body = io.NopCloser(bytes.NewReader(reqBody))
	if reqBody == nil {
		send.Body = nil
	}
	res, err := ct.base.RoundTrip(send)
	if err != nil {
		return nil, err
	}
	resBody, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	ct.c.verify(ct.t, req, reqBody, res, resBody)
	return res, nil
}

// verify checks one exchange and fails t on a mismatch.
func (c *contract) verify(t testing.TB, req *http.Request, reqBody []byte, res *http.Response, resBody []byte) {
	t.Helper()
	if err := c.check(req, reqBody, res, resBody); err != nil {
		t.Errorf("%s %s answered %d, which breaks the OpenAPI document: %v\nresponse body: %.500s",
			req.Method, req.URL.Path, res.StatusCode, err, resBody)
	}
}

// check checks one exchange. Requests the document refuses must be refused
// by the server too (a 4xx); every response must be documented, with its
// headers and body, for the operation, or be the 404/405 of a path or
// method the document does not have.
func (c *contract) check(req *http.Request, reqBody []byte, res *http.Response, resBody []byte) error {
	p := req.URL.Path
	if slices.Contains(outsideContract, p) || strings.HasPrefix(p, "/static/") {
		return nil
	}
	if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" &&
		res.Header.Get("Access-Control-Allow-Methods") != "" {
		// A CORS preflight from a listed origin, answered before routing.
		// One from any other origin is routed, and its 405 checked below.
		return nil
	}
	if path.Clean(p) != p && res.StatusCode >= 300 && res.StatusCode < 400 && res.Header.Get("Location") != "" {
		return nil // net/http's mux redirects to the clean path, which is then checked
	}
	item := c.pathItem(p)
	if res.StatusCode == http.StatusTooManyRequests {
		// A rate-limited address is refused before routing, on any path,
		// and so may a key's own rate limit or credits be, wherever it
		// authenticates. Each says when to retry, but a key whose credits
		// no refill brings back.
		var e struct{ Code string }
		_ = json.Unmarshal(resBody, &e)
		if e.Code != "USAGE_EXCEEDED" {
			e.Code = "RATE_LIMITED"
		}
		if e.Code == "RATE_LIMITED" && res.Header.Get("Retry-After") == "" {
			return errors.New("429 RATE_LIMITED without Retry-After")
		}
		var op *openapi3.Operation
		if item != nil {
			op = item.GetOperation(req.Method)
		}
		if op == nil || op.Responses.Status(http.StatusTooManyRequests) == nil {
			return c.checkError(res, resBody, e.Code)
		}
	}

	if item == nil {
		return c.checkError(res, resBody, "NOT_FOUND")
	}
	if _, optional := item.Extensions["x-apikeyd-feature"]; optional && res.StatusCode == http.StatusNotFound {
		return c.checkError(res, resBody, "NOT_FOUND") // the feature is off: the path is absent
	}
	method := req.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	op := item.GetOperation(method)
	if op == nil {
		if err := c.checkError(res, resBody, "METHOD_NOT_ALLOWED"); err != nil {
			return err
		}
		var allow []string
		for m := range item.Operations() {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
		slices.Sort(allow)
		if got := res.Header.Get("Allow"); got != strings.Join(allow, ", ") {
			return fmt.Errorf("Allow: %q, but the document has %q", got, strings.Join(allow, ", "))
		}
		return nil
	}
	if req.Method == http.MethodHead {
		if op.Responses.Status(res.StatusCode) == nil {
			return fmt.Errorf("status %d is not documented for GET", res.StatusCode)
		}
		return nil
	}

	vreq := req.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		return fmt.Errorf("the document's router: %w", err)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc, // credentials are the server's to judge
		IncludeResponseStatus: true,
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	if reqErr := openapi3filter.ValidateRequest(context.Background(), in); reqErr != nil && res.StatusCode < 400 {
		return fmt.Errorf("the document refuses the request (%v), but the server accepted it", reqErr)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header, Options: opts}
	out.SetBodyBytes(resBody)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return err
	}
	if doc := op.Responses.Status(res.StatusCode).Value; len(doc.Content) == 0 && len(resBody) > 0 {
		return errors.New("a body, where the document has none")
	}
	return nil
}

// pathItem returns the documented path whose template matches p, or nil.
func (c *contract) pathItem(p string) *openapi3.PathItem {
	segs := strings.Split(p, "/")
	for tmpl, item := range c.doc.Paths.Map() {
		tsegs := strings.Split(tmpl, "/")
		if len(tsegs) != len(segs) {
			continue
		}
		match := true
		for i, s := range tsegs {
			if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
				match = match && segs[i] != ""
			} else {
				match = match && s == segs[i]
			}
		}
		if match {
			return item
		}
	}
	return nil
}

// checkError checks a response against the document's Error schema and code.
func (c *contract) checkError(res *http.Response, body []byte, code string) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("error body is not JSON: %w", err)
	}
	if err := c.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("error body: %w", err)
	}
	m := v.(map[string]any)
	if m["code"] != code || m["statusCode"] != float64(res.StatusCode) || httpx.Status(apperr.Code(code)) != res.StatusCode {
		return fmt.Errorf("want %s with its status, got %d %v", code, res.StatusCode, m["code"])
	}
	return nil
}

// pathParam matches a path parameter of a documented path: {id}, {org}, …
var pathParam = regexp.MustCompile(`\{[a-z_]+\}`)

// TestOpenAPIDocument checks the document itself: it loads and is valid
// OpenAPI 3.1 (loadContract), /openapi.json serves it, every documented
// operation is routed, every other method on a documented path answers 405
// with the documented methods in Allow, and the checks reject responses that
// break it (so they are not vacuous).
func TestOpenAPIDocument(t *testing.T) {
	c := mustContract(t)
	e := newEnv(t, "sqlite")

	res := e.do("GET", "/openapi.json", nil, nil)
	if res.Status != http.StatusOK || !bytes.Equal(res.Body, rest.OpenAPI()) {
		t.Fatalf("GET /openapi.json: %d, %d bytes, want the document", res.Status, len(res.Body))
	}

	const someID = "01a213af-7098-770f-9058-153ce297df3b"
	for tmpl, item := range c.doc.Paths.Map() {
		p := pathParam.ReplaceAllString(tmpl, someID)
		for method := range item.Operations() {
			// Without a credential: answered by the route (which the
			// transport checks against the document), never "no such route".
			res := e.do(method, p, nil, nil)
			if res.Status == http.StatusNotFound && strings.Contains(string(res.Body), "no such route") ||
				res.Status == http.StatusMethodNotAllowed {
				t.Errorf("%s %s is documented but not routed: %d %s", method, tmpl, res.Status, res.Body)
			}
		}
		for _, method := range []string{"PATCH", "PUT"} {
			if item.GetOperation(method) == nil {
				e.do(method, p, nil, nil) // 405 with Allow: checked by the transport
			}
		}
	}

	// Drift in the code is caught: responses the document does not allow.
	ok := func(body string) *http.Response {
		return &http.Response{StatusCode: 200, Header: http.Header{
			"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}, "X-Auth-User-Id": {"alice"}, "X-Auth-Scopes": {"*"},
		}, Body: io.NopCloser(strings.NewReader(body))}
	}
	verify, _ := http.NewRequest("GET", e.URL+"/auth/verify", nil)
	for name, body := range map[string]string{
		"ExtraField":     `{"user_id":"alice","auth_method":"jwt","key_id":null,"scopes":null,"extra":1}`,
		"MissingField":   `{"user_id":"alice","auth_method":"jwt","scopes":null}`,
		"NotNullable":    `{"user_id":null,"auth_method":"jwt","key_id":null,"scopes":null}`,
		"BadKeyID":       `{"user_id":"alice","auth_method":"api_key","key_id":"k-1","scopes":null}`,
		"UnknownMethod":  `{"user_id":"alice","auth_method":"basic","key_id":null,"scopes":null}`,
		"BadScope":       `{"user_id":"alice","auth_method":"jwt","key_id":null,"scopes":["Orders Read"]}`,
		"WrongErrorCode": `{"error":"x","statusCode":401,"code":"NOT_FOUND"}`,
		// An organisation key has no user, and only it has org_id and
		// created_by.
		"OrgKeyWithoutCreator": `{"user_id":null,"org_id":"acme","auth_method":"api_key","key_id":"` + someID + `","scopes":null}`,
		"OrgKeyWithUser":       `{"user_id":"alice","org_id":"acme","created_by":"alice","auth_method":"api_key","key_id":"` + someID + `","scopes":null}`,
		"LoginTokenOfAnOrg":    `{"user_id":null,"org_id":"acme","created_by":"alice","auth_method":"jwt","key_id":null,"scopes":null}`,
	} {
		r := ok(body)
		if name == "WrongErrorCode" {
			r.StatusCode = 401
			r.Header.Set("WWW-Authenticate", "Bearer")
		}
		if err := c.check(verify, nil, r, []byte(body)); err == nil {
			t.Errorf("%s: a response breaking the document passed", name)
		}
	}
	good := `{"user_id":"alice","auth_method":"api_key","key_id":"` + someID + `","scopes":null}`
	if err := c.check(verify, nil, ok(good), []byte(good)); err != nil {
		t.Errorf("a good response failed: %v", err)
	}
	orgKey := `{"user_id":null,"org_id":"acme","created_by":"alice","auth_method":"api_key","key_id":"` + someID + `","scopes":null}`
	orgRes := ok(orgKey)
	orgRes.Header.Del("X-Auth-User-Id")
	orgRes.Header.Set("X-Auth-Org-Id", "acme")
	if err := c.check(verify, nil, orgRes, []byte(orgKey)); err != nil {
		t.Errorf("a good response for an organisation key failed: %v", err)
	}
	noStore := ok(good)
	noStore.Header.Del("Cache-Control")
	if err := c.check(verify, nil, noStore, []byte(good)); err == nil {
		t.Error("a response without Cache-Control: no-store passed")
	}
	teapot := ok(good)
	teapot.StatusCode = http.StatusTeapot
	if err := c.check(verify, nil, teapot, []byte(good)); err == nil {
		t.Error("an undocumented status passed")
	}
}
