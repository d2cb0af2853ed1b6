package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// PlainError writes a short text error with the status's standard message;
// it never includes a cause.
func PlainError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, http.StatusText(status))
}

// NotFound and MethodNotAllowed answer a request that no route takes:
// plain text, never a page.
var (
	NotFound         = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { PlainError(w, http.StatusNotFound) })
	MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { PlainError(w, http.StatusMethodNotAllowed) })
)

// JSON writes v as JSON with status.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		PlainError(w, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// ParseForm parses a POST form, telling a too-large body (413) from a
// malformed one (400). It returns false after writing the error.
func ParseForm(w http.ResponseWriter, r *http.Request) bool {
	err := r.ParseForm()
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		PlainError(w, http.StatusRequestEntityTooLarge)
	} else {
		PlainError(w, http.StatusBadRequest)
	}
	return false
}

// ClientIP finds the client's address. X-Forwarded-For is believed only
// when the direct peer is a trusted proxy, walking from the right past
// trusted hops, so a client cannot forge its address to dodge rate limits.
type ClientIP struct {
	Trusted []netip.Prefix
}

// Of returns the client address of r.
func (c ClientIP) Of(r *http.Request) string {
	peer := remoteAddr(r)
	if !c.trusted(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		peer = a.Unmap()
		if !c.trusted(peer) {
			break
		}
	}
	return peer.String()
}

func (c ClientIP) trusted(a netip.Addr) bool {
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return a.Unmap()
}
