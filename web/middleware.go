package web

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"time"
)

type ctxKey int

const (
	loggerKey ctxKey = iota
	requestIDKey
	logPathKey
)

// Logger returns the request-scoped logger (with the request id), or
// slog.Default outside a request.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// RequestID returns the request's id, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// HidePath makes a request's log lines show pattern instead of its path,
// for routes whose path is itself a secret: a reset link carries its token
// there, and the log must never hold a link that works.
func HidePath(pattern string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, ok := r.Context().Value(logPathKey).(*string); ok {
				*p = pattern
			}
			next.ServeHTTP(w, r)
		})
	}
}

// logPath is the request's path as its log lines may show it.
func logPath(r *http.Request) string {
	if p, ok := r.Context().Value(logPathKey).(*string); ok {
		return *p
	}
	return r.URL.Path
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Observe is called after each request with its route template (or "" if
// no route matched), status and duration; metrics hang off it.
type Observe func(r *http.Request, status int, d time.Duration)

// Logging assigns a request id (echoed as X-Request-Id), puts a logger
// carrying it in the context, recovers panics into a plain 500 (the cause
// goes to the log, never to the client) and writes one access log line.
func Logging(base *slog.Logger, observe Observe) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			id := rand.Text()[:16]
			log := base.With("request_id", id)
			path := r.URL.Path // HidePath may replace it
			ctx := context.WithValue(context.WithValue(r.Context(), loggerKey, log), requestIDKey, id)
			ctx = context.WithValue(ctx, logPathKey, &path)
			w.Header().Set("X-Request-Id", id)
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.Error("panic serving request", "panic", p, "path", path)
					if sw.status == 0 {
						PlainError(sw, http.StatusInternalServerError)
					}
				}
				d := time.Since(start)
				if observe != nil {
					observe(r, sw.status, d)
				}
				// The query is left out: it can carry codes, tokens and flow ids.
				log.Info("request", "method", r.Method, "path", path, "status", sw.status,
					"bytes", sw.bytes, "duration_ms", float64(d.Microseconds())/1000)
			}()
			next.ServeHTTP(sw, r.WithContext(ctx))
		})
	}
}

// SecurityHeaders sets the headers every response carries: a CSP without
// inline script or style, no framing, no MIME sniffing, and no Referer, so
// that codes, flow ids and reset links in URLs never leak to other sites.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; font-src 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// NoStore marks responses as uncacheable: pages that show secrets, tokens
// or personal data, and every form.
func NoStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// LimitBody caps request bodies at n bytes; a larger body fails to parse
// and the handler answers 400 (or 413 where it checks).
func LimitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil {
				r.Body = http.MaxBytesReader(w, r.Body, n)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// CrossOrigin refuses cross-origin unsafe requests (POST from another
// site's page) using the browser's Sec-Fetch-Site and Origin headers. It
// guards every cookie-authenticated form; the OAuth endpoints, which
// authenticate the client rather than a cookie, are not behind it.
func CrossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Logger(r.Context()).Warn("cross-origin request refused", "path", logPath(r),
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		PlainError(w, http.StatusForbidden)
	}))
	return cop.Handler(next)
}
