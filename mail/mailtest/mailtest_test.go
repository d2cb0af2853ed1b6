package mailtest_test

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-id/twofold/mail/mailtest"
)

const (
	user = "mailer"
	pass = "s3cret"
)

// alternative is a multipart/alternative message: RFC 2047 subject (Q and
// B words), a quoted-printable text part with a soft line break, and a
// base64 HTML part broken into lines.
func alternative(html string) string {
	b64 := base64.StdEncoding.EncodeToString([]byte(html))
	var lines []string
	for len(b64) > 20 {
		lines, b64 = append(lines, b64[:20]), b64[20:]
	}
	lines = append(lines, b64)
	return "From: Ada <ada@example.com>\r\n" +
		"To: bob@example.com\r\n" +
		"Subject: =?UTF-8?q?Gr=C3=BC=C3=9Fe_?= =?UTF-8?b?YXVzIEvDtmxu?=\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"b1\"\r\n" +
		"\r\n" +
		"--b1\r\n" +
		"Content-Type: text/plain; charset=UTF-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"Gr=C3=BC=C3=9Fe, Bob: this line is soft-=\r\n" +
		"wrapped.\r\n" +
		"a =3D b\r\n" +
		"--b1\r\n" +
		"Content-Type: text/html; charset=UTF-8\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		strings.Join(lines, "\r\n") + "\r\n" +
		"--b1--\r\n"
}

// dial connects to addr; the connection is closed when the test ends.
func dial(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send sends data from ada to bob over c.
func send(c *smtp.Client, data string) error {
	if err := c.Mail("ada@example.com"); err != nil {
		return err
	}
	if err := c.Rcpt("bob@example.com"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(data)); err != nil {
		return err
	}
	return w.Close()
}

// code is the SMTP reply code of err, or 0.
func code(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// TestServer: AUTH is required when a user is set; what arrives is
// decoded, over plain text and over STARTTLS.
func TestServer(t *testing.T) {
	serverTLS, roots := mailtest.SelfSigned(t)
	srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{User: user, Pass: pass, TLS: serverTLS})
	if srv.URL() != "smtp://"+srv.Addr() {
		t.Errorf("URL() = %q", srv.URL())
	}
	c := dial(t, srv.Addr())
	if err := c.Mail("ada@example.com"); code(err) != 502 {
		t.Fatalf("MAIL before AUTH = %v, want 502", err)
	}
	// net/smtp hangs up after a refused AUTH.
	if err := c.Auth(smtp.PlainAuth("", user, "guess", "127.0.0.1")); code(err) != 535 {
		t.Fatalf("AUTH with a wrong password = %v, want 535", err)
	}
	c = dial(t, srv.Addr())
	if err := c.Auth(smtp.PlainAuth("", user, pass, "127.0.0.1")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	const html = "<p>Grüße, <b>Bob</b></p>\r\n<p>a = b</p>"
	if err := send(c, alternative(html)); err != nil {
		t.Fatalf("send: %v", err)
	}
	m := srv.Wait(t, 1, 5*time.Second)[0]
	if m.From != "ada@example.com" || strings.Join(m.To, ",") != "bob@example.com" || m.AuthUser != user || m.TLS {
		t.Errorf("envelope: from %q to %q, auth %q, tls %v", m.From, m.To, m.AuthUser, m.TLS)
	}
	if m.Subject != "Grüße aus Köln" || m.Header.Get("To") != "bob@example.com" {
		t.Errorf("Subject = %q, To = %q", m.Subject, m.Header.Get("To"))
	}
	if want := "Grüße, Bob: this line is soft-wrapped.\na = b"; m.Text != want {
		t.Errorf("Text = %q, want %q", m.Text, want)
	}
	if want := strings.ReplaceAll(html, "\r\n", "\n"); m.HTML != want {
		t.Errorf("HTML = %q, want %q", m.HTML, want)
	}

	// A single-part base64 text message over STARTTLS.
	c = dial(t, srv.Addr())
	if err := c.StartTLS(&tls.Config{RootCAs: roots, ServerName: "localhost"}); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Auth(smtp.PlainAuth("", user, pass, "127.0.0.1")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	body := base64.StdEncoding.EncodeToString([]byte("line one\r\nline two\r\n"))
	if err := send(c, "Subject: plain\r\nContent-Type: text/plain; charset=us-ascii\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n"+body+"\r\n"); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs := srv.Wait(t, 2, 5*time.Second)
	if m := msgs[1]; !m.TLS || m.Subject != "plain" || m.Text != "line one\nline two\n" || m.HTML != "" {
		t.Errorf("second message: tls %v, subject %q, text %q, html %q", m.TLS, m.Subject, m.Text, m.HTML)
	}

	srv.Close()
	srv.Close()
	if conn, err := net.Dial("tcp", srv.Addr()); err == nil {
		conn.Close()
		t.Fatal("a closed server still accepts connections")
	}
}

// fakeTB records failures instead of ending the test, and runs its
// cleanups when told.
type fakeTB struct {
	testing.TB // nil: any other method panics
	mu         sync.Mutex
	failures   []string
	cleanups   []func()
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.Errorf(format, args...) }

func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func (f *fakeTB) Failures() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.failures...)
}

// TestServerFails: Wait fails the test when too few messages arrive in
// time, and a message that does not parse is refused and reported.
func TestServerFails(t *testing.T) {
	ft := &fakeTB{}
	srv := mailtest.Start(ft, "127.0.0.1:0", mailtest.Options{})
	c := dial(t, srv.Addr())
	latin1 := "Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe\r\n"
	if err := send(c, latin1); code(err) != 554 {
		t.Errorf("unparsable message = %v, want 554", err)
	}

	start := time.Now()
	msgs := srv.Wait(ft, 1, 100*time.Millisecond)
	if elapsed := time.Since(start); elapsed < 100*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("Wait returned after %v, want its 100ms timeout", elapsed)
	}
	if f := ft.Failures(); len(msgs) != 0 || len(f) != 1 || !strings.Contains(f[0], "0 messages") {
		t.Fatalf("Wait for a message that never came: %d messages, failures %q", len(msgs), f)
	}
	ft.runCleanups()
	if f := ft.Failures(); len(f) != 2 || !strings.Contains(f[1], `charset "iso-8859-1"`) {
		t.Fatalf("cleanup did not report the refused message: %q", f)
	}
}

// TestCloseAtOnce: a server closed right after Start (before it may have
// begun accepting) stops, and refuses connections.
func TestCloseAtOnce(t *testing.T) {
	for range 20 {
		srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
		srv.Close()
		if conn, err := net.Dial("tcp", srv.Addr()); err == nil {
			conn.Close()
			t.Fatal("a closed server still accepts connections")
		}
	}
}
