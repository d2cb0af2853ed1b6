package templates

import (
	"net/http"

	"github.com/twofold-id/twofold/web"
)

// ErrorPage is the data of pages/error.html.
type ErrorPage struct {
	Title, Message, RequestID string
}

// Respond renders page name with data and status for a handler. If the
// page cannot be rendered, nothing of it was sent: the failure is logged
// and the client gets a plain 500.
func (s *Set) Respond(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	if err := s.Render(w, status, name, data); err != nil {
		web.Logger(r.Context()).Error("render page", "page", name, "err", err)
		web.PlainError(w, http.StatusInternalServerError)
	}
}

// Error shows the error page: a title and a plain sentence for the user,
// and the request id to quote. The cause, if any, goes to the log only.
func (s *Set) Error(w http.ResponseWriter, r *http.Request, status int, title, message string, cause error) {
	if cause != nil {
		log := web.Logger(r.Context())
		if status >= 500 {
			log.Error(title, "err", cause)
		} else {
			log.Warn(title, "err", cause)
		}
	}
	s.Respond(w, r, status, "error", ErrorPage{Title: title, Message: message, RequestID: web.RequestID(r.Context())})
}
