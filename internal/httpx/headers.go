package httpx

import (
	"mime"
	"net/http"
)

// The Content-Security-Policy of every answer that does not bring its own:
// an API answer loads and runs nothing and may not be framed. An HTML page
// sets its own policy, which should keep frame-ancestors 'none'; a page that
// sets none is still never framed.
const (
	apiCSP  = "default-src 'none'; frame-ancestors 'none'"
	pageCSP = "frame-ancestors 'none'"
)

// SecurityHeaders gives every answer the headers that keep browsers from
// misusing it: no MIME sniffing (a JSON answer is never run as a script or
// rendered as a page), no Referer carrying a URL elsewhere, no framing
// (clickjacking), and a Content-Security-Policy.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", apiCSP)
		next.ServeHTTP(&pageHeaders{ResponseWriter: w}, r)
	})
}

// pageHeaders relaxes the API policy of an HTML answer whose handler set
// none, to pageCSP, when the answer's headers are written.
type pageHeaders struct {
	http.ResponseWriter
	done bool
}

func (p *pageHeaders) finish() {
	if p.done {
		return
	}
	p.done = true
	h := p.Header()
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt == "text/html" && h.Get("Content-Security-Policy") == apiCSP {
		h.Set("Content-Security-Policy", pageCSP)
	}
}

// WriteHeader finishes the headers and writes them.
func (p *pageHeaders) WriteHeader(code int) {
	p.finish()
	p.ResponseWriter.WriteHeader(code)
}

// Write finishes the headers and writes b.
func (p *pageHeaders) Write(b []byte) (int, error) {
	p.finish()
	return p.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (p *pageHeaders) Unwrap() http.ResponseWriter { return p.ResponseWriter }
