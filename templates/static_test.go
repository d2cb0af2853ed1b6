package templates

import (
	"net/http/httptest"
	"testing"
)

// TestStaticBadNames: a static file's name that is not a valid path (found
// by the hostile-input test: invalid UTF-8, which fs.Sub refuses and
// http.FileServer answered with a 500) is not found; a real one is served.
func TestStaticBadNames(t *testing.T) {
	s, err := Load(Brand{}, "")
	if err != nil {
		t.Fatal(err)
	}
	h := s.Static()
	for path, want := range map[string]int{
		"/static/style.css":          200,
		"/static/%FF%FE":             404,
		"/static/style.css%C0%AF":    404,
		"/static/nope.css":           404,
		"/static/%E2%80%AEstyle.css": 404,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
	}
}

// TestStaticListsNothing: the static directory is not listed, and only
// GET and HEAD are served.
func TestStaticListsNothing(t *testing.T) {
	s, err := Load(Brand{}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/static/", 404},
		{"GET", "/static/style.css", 200},
		{"POST", "/static/style.css", 405},
	} {
		rec := httptest.NewRecorder()
		s.Static().ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.want)
		}
	}
}
