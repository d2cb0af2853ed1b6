package mail_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/twofold-id/twofold/mail"
	"github.com/twofold-id/twofold/store/storetest"
)

// TestDevOutbox: the list shows the newest message first, a message page
// shows it (escaped), and any id that names no message is a plain 404.
func TestDevOutbox(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		e := newEnvOn(t, b)
		e.send(t, "ada@example.com")
		if _, err := e.mailer.Send(ctx, "bob@example.com", "test", testData{Name: "<script>alert(1)</script>"}); err != nil {
			t.Fatal(err)
		}
		r := mux.NewRouter()
		(&mail.DevOutbox{Store: e.db, Templates: e.tmpl}).Mount(r)
		srv := httptest.NewServer(r)
		defer srv.Close()

		status, header, body := get(t, srv.URL+"/dev/mail")
		if status != http.StatusOK || header.Get("Cache-Control") != "no-store" {
			t.Fatalf("list: %d, Cache-Control %q", status, header.Get("Cache-Control"))
		}
		bob, ada := strings.Index(body, "bob@example.com"), strings.Index(body, "ada@example.com")
		if bob < 0 || ada < 0 || bob > ada || !strings.Contains(body, `href="/dev/mail/2"`) {
			t.Fatalf("list does not show both messages newest first:\n%s", body)
		}

		status, header, body = get(t, srv.URL+"/dev/mail/2")
		if status != http.StatusOK || header.Get("Cache-Control") != "no-store" {
			t.Fatalf("message: %d, Cache-Control %q", status, header.Get("Cache-Control"))
		}
		if !strings.Contains(body, "bob@example.com") || !strings.Contains(body, "A test message from twofold") ||
			!strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(body, "<script>alert") {
			t.Fatalf("message page:\n%s", body)
		}

		for _, id := range []string{"0", "3", "999", "-1", "+1", "1.0", "01x", "abc", "99999999999999999999", "9223372036854775808"} {
			status, header, body := get(t, srv.URL+"/dev/mail/"+id)
			if status != http.StatusNotFound || body != "Not Found\n" ||
				!strings.HasPrefix(header.Get("Content-Type"), "text/plain") || header.Get("Cache-Control") != "no-store" {
				t.Errorf("GET /dev/mail/%s = %d %q (%s)", id, status, body, header.Get("Content-Type"))
			}
		}
	})
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}
