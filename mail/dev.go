package mail

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/templates"
	"github.com/twofold-id/twofold/web"
)

// DevStore is what the development outbox reads.
type DevStore interface {
	ListMail(ctx context.Context, limit int) ([]store.Mail, error)
	GetMail(ctx context.Context, id int64) (store.Mail, error)
}

var _ DevStore = (*store.DB)(nil)

// devListLimit is how many messages the outbox page lists.
const devListLimit = 100

// DevOutbox shows the outbox in the browser: GET /dev/mail lists the newest
// messages, GET /dev/mail/{id} shows one, text part included.
//
// It shows every message in full, reset links among them, to whoever can
// reach it, and asks for no sign-in. The caller must therefore mount it only
// in development mode (twofold serve --dev without an SMTP server), never in
// production.
type DevOutbox struct {
	Store     DevStore
	Templates *templates.Set
}

// Mount registers the routes; every response is no-store.
func (h *DevOutbox) Mount(r *mux.Router) {
	dev := r.NewRoute().Subrouter()
	dev.Use(web.NoStore)
	dev.HandleFunc("/dev/mail", h.handleList).Methods(http.MethodGet, http.MethodHead)
	dev.HandleFunc("/dev/mail/{id}", h.handleMessage).Methods(http.MethodGet, http.MethodHead)
}

// devMailPage is the data of page dev_mail.
type devMailPage struct {
	Messages []store.Mail
}

// devMessagePage is the data of page dev_mail_message.
type devMessagePage struct {
	Mail store.Mail
}

func (h *DevOutbox) handleList(w http.ResponseWriter, r *http.Request) {
	msgs, err := h.Store.ListMail(r.Context(), devListLimit)
	if err != nil {
		h.fail(w, r, "list mail", err)
		return
	}
	h.render(w, r, "dev_mail", devMailPage{Messages: msgs})
}

func (h *DevOutbox) handleMessage(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(mux.Vars(r)["id"])
	if !ok {
		web.PlainError(w, http.StatusNotFound)
		return
	}
	m, err := h.Store.GetMail(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		web.PlainError(w, http.StatusNotFound)
		return
	}
	if err != nil {
		h.fail(w, r, "get mail", err)
		return
	}
	h.render(w, r, "dev_mail_message", devMessagePage{Mail: m})
}

// parseID accepts a positive decimal id written with digits only.
func parseID(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

func (h *DevOutbox) render(w http.ResponseWriter, r *http.Request, page string, data any) {
	// Render writes nothing when the template fails, so the error page
	// can still be sent.
	if err := h.Templates.Render(w, http.StatusOK, page, data); err != nil {
		h.fail(w, r, "render "+page, err)
	}
}

// fail logs the cause and answers with a plain 500.
func (h *DevOutbox) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	web.Logger(r.Context()).Error("development outbox: "+what, "err", err)
	web.PlainError(w, http.StatusInternalServerError)
}
