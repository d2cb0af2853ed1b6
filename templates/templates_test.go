package templates

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEveryPageRenders(t *testing.T) {
	s, err := Load(Brand{Name: "Acme ID"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.pages) < 5 {
		t.Fatalf("only %d pages parsed", len(s.pages))
	}
	// A page given the wrong data fails without writing anything.
	rec := httptest.NewRecorder()
	if err := s.Render(rec, 200, "login", struct{}{}); err == nil {
		t.Fatal("rendering login with the wrong data succeeded")
	}
	if rec.Body.Len() != 0 || rec.Code != 200 || rec.Header().Get("Content-Type") != "" {
		t.Fatalf("a failed render wrote %d bytes", rec.Body.Len())
	}
	if err := s.Render(rec, 200, "nope", nil); err == nil {
		t.Fatal("rendered a missing page")
	}
	rec = httptest.NewRecorder()
	err = s.Render(rec, 401, "error", struct{ Title, Message, RequestID string }{"Nope", "<script>x</script>", "r1"})
	if err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	if rec.Code != 401 || !strings.Contains(body, "Acme ID") || strings.Contains(body, "<script>x") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatalf("error page: %d %s", rec.Code, body)
	}
}

func TestMail(t *testing.T) {
	s, err := Load(Brand{}, "")
	if err != nil {
		t.Fatal(err)
	}
	subj, text, html, err := s.Mail("test", struct{ Name string }{"<Ada>"})
	if err != nil {
		t.Fatal(err)
	}
	if subj != "A test message from twofold" || !strings.Contains(text, "Hello <Ada>,") || !strings.Contains(html, "Hello &lt;Ada&gt;,") {
		t.Fatalf("mail = %q / %q / %q", subj, text, html)
	}
}

func TestOverrides(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "mail"), 0o755)
	os.WriteFile(filepath.Join(dir, "mail", "test.txt"), []byte(`{{define "subject"}}Custom{{end}}{{define "body"}}Hi{{end}}`), 0o644)
	s, err := Load(Brand{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if subj, _, _, _ := s.Mail("test", struct{ Name string }{}); subj != "Custom" {
		t.Fatalf("override ignored: subject %q", subj)
	}
	os.WriteFile(filepath.Join(dir, "mail", "test.txt"), []byte(`{{define "subject"}}{{.Broken`), 0o644)
	if _, err := Load(Brand{}, dir); err == nil {
		t.Fatal("a broken override was accepted at load")
	}
}

func TestValidColor(t *testing.T) {
	for c, want := range map[string]bool{"#fff": true, "#2f5bea": true, "red": false, "#12345": false, "#fff;}body{": false, "": false} {
		if ValidColor(c) != want {
			t.Errorf("ValidColor(%q) = %v", c, !want)
		}
	}
}
