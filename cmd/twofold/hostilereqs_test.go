package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/twofold-id/twofold/mfa"
	"github.com/twofold-id/twofold/session"
	"github.com/twofold-id/twofold/store"
)

// The requests of TestHostileInput: who sends them (context) and what
// (requests, methodSweep).

// context makes a request be sent by who: it sets the request's cookies
// and headers and returns the fields it keeps valid.
func (h *hostile) context(who string, r *hostileReq) map[string]string {
	ctx := context.Background()
	valid := map[string]string{}
	cookie := func(name, value string) { r.cookies = append(r.cookies, &http.Cookie{Name: name, Value: value}) }
	step, key, _ := strings.Cut(strings.TrimPrefix(who, "flow:"), "+")
	if strings.HasPrefix(who, "owner") && strings.HasPrefix(r.path, "/settings") {
		r.stopped = func(_ int, location, _ string) bool { return strings.HasPrefix(location, "/login?") }
	}
	switch {
	case who == "anon":
	case who == "owner":
		r.cookies = append(r.cookies, h.ownerCookies...)
	case who == "owner+key":
		r.cookies = append(r.cookies, h.ownerCookies...)
		if !h.svc.KeysAvailable() {
			break
		}
		id, _, err := h.svc.BeginKeyRegistration(ctx, h.owner.User, mfa.SessionBinding(session.Account{Session: store.BrowserSession{IDHash: h.ownerSessionHash}}))
		if err != nil {
			h.t.Fatal(err)
		}
		valid["ceremony"] = id
	case who == "stale":
		cookie(session.CookieName, h.stale)
	case who == "disposable", who == "disposable:old":
		ago := time.Duration(0)
		if who == "disposable:old" {
			ago = time.Hour
		}
		id := h.newSession(h.member, ago)
		sum := sha256.Sum256([]byte(id))
		h.disposable[hex.EncodeToString(sum[:])] = true
		cookie(session.CookieName, id)
	case who == "bearer":
		r.header.Set("Authorization", "Bearer "+h.ownerToken)
		r.stopped = func(status int, _, body string) bool { return status == http.StatusUnauthorized }
	case who == "client", who == "client:refresh":
		r.header.Set("Authorization", "Basic "+basicAuth(h.adminClient.ID, h.adminSecret))
		r.stopped = func(status int, _, body string) bool { return strings.Contains(body, "invalid_client") }
		valid["grant_type"], valid["redirect_uri"] = "authorization_code", h.adminClient.RedirectURIs[0]
		if who == "client:refresh" {
			valid["grant_type"] = "refresh_token"
		}
	case who == "public":
		valid["client_id"], valid["grant_type"], valid["redirect_uri"] = h.public.ID, "authorization_code", h.public.RedirectURIs[0]
	case who == "hint":
		valid["id_token_hint"], valid["client_id"] = h.idToken, h.adminClient.ID
		r.stopped = func(_ int, _, body string) bool { return strings.Contains(body, "could not be verified") }
	case strings.HasPrefix(who, "flow:"):
		cookie("twofold_device", h.device)
		r.stopped = func(_ int, _, body string) bool { return strings.Contains(body, "Sign-in expired") }
		if step == "login" && key == "email" {
			step, valid["email"] = "login", h.member.Email
		}
		valid["flow"] = h.newFlow(step)
		var err error
		switch {
		case key == "key" && !h.svc.KeysAvailable():
		case key == "key" && step == "2fa":
			valid["ceremony"], _, err = h.svc.BeginKeyLogin(ctx, h.member.User, mfa.FlowBinding(valid["flow"]))
		case key == "key":
			valid["ceremony"], _, err = h.svc.BeginKeyRegistration(ctx, h.newbie.User, mfa.FlowBinding(valid["flow"]))
		}
		if err != nil {
			h.t.Fatal(err)
		}
	default:
		h.t.Fatalf("no context %q", who)
	}
	return valid
}

func basicAuth(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

// requests are the hostile requests to one route.
func (h *hostile) requests(rt route, spec routeSpec) []hostileReq {
	method := rt.method
	if method == "*" {
		method = http.MethodGet
	}
	path := fillPath(rt.path, spec.vars, "", "")
	contexts := append([]string{"anon"}, spec.contexts...)
	newReq := func(what, who string) (hostileReq, map[string]string) {
		r := hostileReq{what: fmt.Sprintf("%s: %s (%s)", rt, what, who), method: method, path: path, header: http.Header{}}
		valid := h.context(who, &r)
		if who != "anon" {
			valid = merge(spec.valid, valid)
		}
		return r, valid
	}
	var out []hostileReq
	for _, v := range hostileValues {
		for _, who := range contexts {
			r, valid := newReq(fmt.Sprintf("%.40q in every field", v), who)
			form := url.Values{"unexpected": {v}, v: {"1"}}
			for _, f := range spec.fields {
				if x, ok := valid[f]; ok {
					form.Set(f, x)
				} else {
					form.Set(f, v)
				}
			}
			r.setForm(form)
			out = append(out, r)
		}
	}
	if method == http.MethodPost {
		for _, b := range hostileBodies() {
			for _, who := range contexts[:min(2, len(contexts))] {
				r, valid := newReq("body: "+b.name, who)
				r.stopped = nil // the form is the body, so a flow in the query is not read
				r.contentType, r.encoding, r.body = b.contentType, b.encoding, b.body
				r.query = url.Values(mapValues(valid)).Encode() // keeps a flow or a ceremony, read from the form only
				out = append(out, r)
			}
		}
	}
	for i, hd := range hostileHeaders(h.adminClient.ID) {
		r, _ := newReq(fmt.Sprintf("header set %d %v", i, slices.Collect(maps.Keys(hd))), "anon")
		r.stopped = nil
		maps.Copy(r.header, hd)
		r.setForm(url.Values{})
		out = append(out, r)
	}
	for name := range spec.vars {
		for _, seg := range hostileSegments {
			for _, who := range contexts[:min(2, len(contexts))] {
				r, _ := newReq(fmt.Sprintf("path {%s} = %.40q", name, seg), who)
				r.stopped = nil // a hostile path variable is refused by design
				r.path = fillPath(rt.path, spec.vars, name, seg)
				r.setForm(url.Values{})
				out = append(out, r)
			}
		}
	}
	return out
}

// methodSweep sends every method to path, anonymous and signed in: with a
// session of its own, as POST /logout ends it, and an hour old, as POST
// /settings/security/disable from a recent sign-in is the action.
func (h *hostile) methodSweep(path string) []hostileReq {
	var out []hostileReq
	for _, m := range hostileMethods {
		for _, who := range []string{"anon", "disposable:old"} {
			if who != "anon" && h.member.ID == "" {
				continue
			}
			r := hostileReq{what: fmt.Sprintf("%s %s (%s)", m, path, who), method: m, path: path, header: http.Header{}}
			h.context(who, &r)
			out = append(out, r)
		}
	}
	return out
}

// setForm puts form in the query of a GET and in the body of anything else.
func (r *hostileReq) setForm(form url.Values) {
	if r.method == http.MethodGet || r.method == http.MethodHead {
		r.query = form.Encode()
		return
	}
	r.body, r.contentType = []byte(form.Encode()), "application/x-www-form-urlencoded"
}

func merge(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, b)
	return out
}

func mapValues(m map[string]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range m {
		out[k] = []string{v}
	}
	return out
}
