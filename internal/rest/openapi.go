package rest

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes every REST route: the OpenAPI 3.1 document served
// at /openapi.json. The end-to-end tests validate every REST request and
// response they make against it, so it cannot drift from the code.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3.1 document of the REST routes.
func OpenAPI() []byte { return openAPIDocument }

func (a *API) openapi(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(openAPIDocument)
}
