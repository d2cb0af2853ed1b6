// Package templates holds twofold's embedded pages, emails and static
// assets, parsed once at start-up.
//
// Every page is pages/NAME.html, defining "title" and "content" inside the
// shared layout (pages/layout.html); every email is mail/NAME.txt plus
// mail/NAME.html, defining "subject" and "body". A missing or broken
// template fails start-up, not a request. Rendering goes to a buffer first,
// so a template error never sends half a page.
//
// Operators may override any page or email by placing a file of the same
// name under an override directory; overrides are parsed with the same
// rules, at start-up.
package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode/utf8"

	"github.com/twofold-id/twofold/web"
)

//go:embed pages/*.html mail/*.txt mail/*.html static/*
var embedded embed.FS

// Brand is the operator's branding shown on every page.
type Brand struct {
	// Name is the product name shown to users (default "twofold").
	Name string
	// LogoURL, if set, is shown beside the name.
	LogoURL string
	// AccentColor is a CSS color for buttons and links (default a blue).
	AccentColor string
}

// Set is the parsed pages and emails.
type Set struct {
	brand    Brand
	pages    map[string]*template.Template
	mailText map[string]*texttemplate.Template
	mailHTML map[string]*template.Template
	static   fs.FS
	assetTag map[string]string // file → content hash, for cache busting
}

// Load parses every embedded page and email, with files in overrideDir
// (if not "") taking the place of embedded ones of the same name.
func Load(brand Brand, overrideDir string) (*Set, error) {
	if brand.Name == "" {
		brand.Name = "twofold"
	}
	var src fs.FS = embedded
	if overrideDir != "" {
		src = overlay{top: os.DirFS(overrideDir), base: embedded}
	}
	static, _ := fs.Sub(embedded, "static")
	s := &Set{brand: brand, pages: map[string]*template.Template{}, mailText: map[string]*texttemplate.Template{},
		mailHTML: map[string]*template.Template{}, static: static, assetTag: map[string]string{}}
	if err := s.hashAssets(); err != nil {
		return nil, err
	}
	if err := s.parsePages(src); err != nil {
		return nil, err
	}
	if err := s.parseMail(src); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Set) funcs() template.FuncMap {
	return template.FuncMap{
		"brand": func() Brand { return s.brand },
		"asset": func(name string) string { return "/static/" + name + "?v=" + s.assetTag[name] },
		"date":  func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") },
		"join":  strings.Join,
	}
}

// parsePages parses each page with the layout and the partials (files
// whose names start with "_", such as the security-key form).
func (s *Set) parsePages(src fs.FS) error {
	layout, err := fs.ReadFile(src, "pages/layout.html")
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	names, err := fs.Glob(embedded, "pages/*.html")
	if err != nil {
		return err
	}
	var partials []string
	for _, file := range names {
		if strings.HasPrefix(path.Base(file), "_") {
			body, err := fs.ReadFile(src, file)
			if err != nil {
				return fmt.Errorf("templates: %w", err)
			}
			partials = append(partials, string(body))
		}
	}
	for _, file := range names {
		name := strings.TrimSuffix(path.Base(file), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue
		}
		body, err := fs.ReadFile(src, file)
		if err != nil {
			return fmt.Errorf("templates: %w", err)
		}
		t, err := template.New("layout").Funcs(s.funcs()).Parse(string(layout))
		for _, p := range partials {
			if err == nil {
				_, err = t.New("").Parse(p)
			}
		}
		if err == nil {
			_, err = t.New(name).Parse(string(body))
		}
		if err != nil {
			return fmt.Errorf("templates: page %s: %w", name, err)
		}
		s.pages[name] = t
	}
	return nil
}

func (s *Set) parseMail(src fs.FS) error {
	names, err := fs.Glob(embedded, "mail/*.txt")
	if err != nil {
		return err
	}
	for _, file := range names {
		name := strings.TrimSuffix(path.Base(file), ".txt")
		txt, err1 := fs.ReadFile(src, file)
		htm, err2 := fs.ReadFile(src, "mail/"+name+".html")
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("templates: mail %s: %w", name, err)
		}
		tt, err := texttemplate.New(name).Funcs(texttemplate.FuncMap(s.funcs())).Parse(string(txt))
		if err != nil {
			return fmt.Errorf("templates: mail %s.txt: %w", name, err)
		}
		ht, err := template.New(name).Funcs(s.funcs()).Parse(string(htm))
		if err != nil {
			return fmt.Errorf("templates: mail %s.html: %w", name, err)
		}
		s.mailText[name], s.mailHTML[name] = tt, ht
	}
	return nil
}

func (s *Set) hashAssets() error {
	return fs.WalkDir(s.static, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(s.static, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		s.assetTag[p] = hex.EncodeToString(sum[:6])
		return nil
	})
}

// Brand returns the branding pages are rendered with.
func (s *Set) Brand() Brand { return s.brand }

// Render writes page name with data and status. It renders into a buffer
// first: on a template error nothing has been sent and the error is returned.
func (s *Set) Render(w http.ResponseWriter, status int, name string, data any) error {
	t, ok := s.pages[name]
	if !ok {
		return fmt.Errorf("templates: no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("templates: render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := buf.WriteTo(w)
	return err
}

// Mail renders email name: its subject, text body and HTML body.
func (s *Set) Mail(name string, data any) (subject, text, html string, err error) {
	tt, ok := s.mailText[name]
	if !ok {
		return "", "", "", fmt.Errorf("templates: no mail %q", name)
	}
	var sb, tb, hb bytes.Buffer
	if err := tt.ExecuteTemplate(&sb, "subject", data); err != nil {
		return "", "", "", fmt.Errorf("templates: mail %s subject: %w", name, err)
	}
	if err := tt.ExecuteTemplate(&tb, "body", data); err != nil {
		return "", "", "", fmt.Errorf("templates: mail %s text: %w", name, err)
	}
	if err := s.mailHTML[name].ExecuteTemplate(&hb, "body", data); err != nil {
		return "", "", "", fmt.Errorf("templates: mail %s html: %w", name, err)
	}
	return strings.TrimSpace(sb.String()), strings.TrimSpace(tb.String()) + "\n", hb.String(), nil
}

// Static serves the embedded assets under /static/. Asset URLs carry a
// content hash, so they may be cached for a year. /static/brand.css
// carries the operator's accent color (a stylesheet, since the CSP allows
// no inline style).
func (s *Set) Static() http.Handler {
	files := http.StripPrefix("/static/", http.FileServerFS(s.static))
	brandCSS := []byte{}
	if s.brand.AccentColor != "" {
		brandCSS = []byte(":root { --accent: " + s.brand.AccentColor + "; }\n")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/static/brand.css" {
			w.Header().Set("Content-Type", "text/css; charset=utf-8")
			w.Header().Set("Cache-Control", "public, max-age=300")
			w.Write(brandCSS)
			return
		}
		if !utf8.ValidString(r.URL.Path) || strings.HasSuffix(r.URL.Path, "/") {
			// fs.Sub refuses an invalid name with fs.ErrInvalid, which
			// http.FileServer would answer with a 500; and directories are
			// not listed. Both are simply not found.
			web.PlainError(w, http.StatusNotFound)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			web.PlainError(w, http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		files.ServeHTTP(w, r)
	})
}

// ValidColor reports whether c is a CSS hex color (#rgb or #rrggbb), the
// only form accepted for AccentColor so that config cannot inject CSS.
func ValidColor(c string) bool {
	if len(c) != 4 && len(c) != 7 || c[0] != '#' {
		return false
	}
	for _, r := range c[1:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// overlay reads from top first, then base.
type overlay struct{ top, base fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	if f, err := o.top.Open(name); err == nil {
		return f, nil
	}
	return o.base.Open(name)
}
