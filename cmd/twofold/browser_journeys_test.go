package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/twofold-id/twofold/password"
	"github.com/twofold-id/twofold/store"
)

// The browser suite: each journey is a person's path through the pages,
// typed and clicked in Chromium, with a screenshot of every step. The
// documentation under docs/ shows those screenshots; UPDATE_SCREENSHOTS=1
// writes them to docs/screenshots.

// browserJourneys are the journeys, run in parallel, each in its own
// Chromium against its own twofold.
var browserJourneys = []struct {
	name string
	run  func(*testing.T)
}{
	{"demo", journeyDemo},                    // 1. the newcomer's demo sign-in
	{"totp", journeyTOTP},                    // 2. an authenticator app, then codes and backup codes
	{"owner-reset", journeyOwnerReset},       // 3. an owner resets a member, who enrolls again
	{"security-key", TestBrowserSecurityKey}, // 4. a security key (browser_webauthn_test.go)
	{"errors", journeyErrors},                // 5. the error paths a person meets
	{"branding", journeyBranding},            // the operator's name, logo and color
}

// TestBrowserJourneys plays every journey, then checks that every
// screenshot the documentation shows is one a journey took: a page the
// docs show that no longer renders, or a renamed step, fails here.
func TestBrowserJourneys(t *testing.T) {
	chromiumPath(t) // skips, or fails in CI, before anything starts
	var ran atomic.Int32
	t.Run("journey", func(t *testing.T) {
		for _, j := range browserJourneys {
			t.Run(j.name, func(t *testing.T) {
				t.Parallel()
				ran.Add(1)
				j.run(t)
			})
		}
	})
	if t.Failed() {
		return
	}
	if int(ran.Load()) != len(browserJourneys) {
		t.Logf("the documentation's screenshots are checked only when every journey runs (%d of %d ran)", ran.Load(), len(browserJourneys))
		return
	}
	checkDocScreenshots(t, producedShots.names())
}

// shotSet is the names of the screenshots the journeys saved in this run.
type shotSet struct {
	mu  sync.Mutex
	set map[string]bool
}

// producedShots collects what chromeTab.screenshot saves.
var producedShots = &shotSet{set: map[string]bool{}}

func (s *shotSet) add(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set[name] = true
}

func (s *shotSet) names() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.set))
	for k := range s.set {
		out[k] = true
	}
	return out
}

// docScreenshot is a screenshot link in a Markdown page of docs/, either
// ![alt](screenshots/x.png) or <img src="screenshots/x.png">.
var docScreenshot = regexp.MustCompile(`\(screenshots/([^)\s]+\.png)\)|src="screenshots/([^"]+\.png)"`)

// checkDocScreenshots fails the test for every problem
// docScreenshotProblems finds in docs/; with UPDATE_SCREENSHOTS=1 it also
// removes the screenshots no journey takes any more.
func checkDocScreenshots(t *testing.T, produced map[string]bool) {
	t.Helper()
	docs := filepath.Join("..", "..", "docs")
	update := os.Getenv("UPDATE_SCREENSHOTS") == "1"
	problems, err := docScreenshotProblems(docs, produced, !update)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if !update || len(problems) > 0 {
		return
	}
	old, _ := filepath.Glob(filepath.Join(docs, "screenshots", "*.png"))
	for _, f := range old {
		if !produced[filepath.Base(f)] {
			t.Logf("removing %s: no journey takes it any more", f)
			if err := os.Remove(f); err != nil {
				t.Error(err)
			}
		}
	}
}

// docScreenshotProblems lists every screenshot a page docs/*.md shows
// that no journey took (produced), and, when onDisk, every one missing
// from docs/screenshots. Showing none at all is a problem too.
func docScreenshotProblems(docs string, produced map[string]bool, onDisk bool) ([]string, error) {
	pages, err := filepath.Glob(filepath.Join(docs, "*.md"))
	if err != nil || len(pages) == 0 {
		return nil, fmt.Errorf("no documentation pages in %s (%v)", docs, err)
	}
	var problems []string
	shown := 0
	for _, page := range pages {
		body, err := os.ReadFile(page)
		if err != nil {
			return nil, err
		}
		for _, m := range docScreenshot.FindAllStringSubmatch(string(body), -1) {
			name := m[1] + m[2]
			shown++
			if !produced[name] {
				problems = append(problems, fmt.Sprintf("%s shows screenshots/%s, which no journey takes (that journey took: %s)",
					filepath.Base(page), name, closest(name, produced)))
				continue
			}
			if _, err := os.Stat(filepath.Join(docs, "screenshots", name)); onDisk && err != nil {
				problems = append(problems, fmt.Sprintf("%s shows screenshots/%s, which is not in %s/screenshots: run the browser tests with UPDATE_SCREENSHOTS=1",
					filepath.Base(page), name, docs))
			}
		}
	}
	if shown == 0 {
		problems = append(problems, "no documentation page shows a screenshot")
	}
	return problems, nil
}

// TestDocScreenshotProblems: a page showing a screenshot no journey takes,
// or one missing on disk, is reported; one that is taken and saved is not.
func TestDocScreenshotProblems(t *testing.T) {
	docs := t.TempDir()
	os.MkdirAll(filepath.Join(docs, "screenshots"), 0o755)
	os.WriteFile(filepath.Join(docs, "screenshots", "totp-01-sign-in.png"), nil, 0o644)
	os.WriteFile(filepath.Join(docs, "members.md"), []byte("![a](screenshots/totp-01-sign-in.png)\n"+
		`<img src="screenshots/totp-02-enroll-phone.png" width="270">`+"\n![b](screenshots/totp-03-old-name.png)\n"), 0o644)
	produced := map[string]bool{"totp-01-sign-in.png": true, "totp-02-enroll-phone.png": true, "demo-01-demo-app.png": true}
	problems, err := docScreenshotProblems(docs, produced, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"members.md shows screenshots/totp-02-enroll-phone.png, which is not in " + docs + "/screenshots: run the browser tests with UPDATE_SCREENSHOTS=1",
		"members.md shows screenshots/totp-03-old-name.png, which no journey takes (that journey took: totp-01-sign-in.png, totp-02-enroll-phone.png)",
	}
	if !slices.Equal(problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
	if problems, _ := docScreenshotProblems(docs, produced, false); len(problems) != 1 {
		t.Errorf("without the disk check: %q, want only the screenshot no journey takes", problems)
	}
}

// closest lists the screenshots name's journey took, to say what it may
// have been renamed to.
func closest(name string, produced map[string]bool) string {
	journey := name
	if m := shotJourney.FindStringSubmatch(name); m != nil {
		journey = m[1]
	}
	var same []string
	for p := range produced {
		if strings.HasPrefix(p, journey) {
			same = append(same, p)
		}
	}
	slices.Sort(same)
	return strings.Join(same, ", ")
}

// shotJourney finds the journey part of a screenshot's name: "totp-" in
// totp-04-enroll.png.
var shotJourney = regexp.MustCompile(`^(.*?-)\d\d-`)

// createPerson adds a user with a name, as the screenshots show it, and
// a random password.
func (s *testServer) createPerson(email, name string) testUser {
	s.t.Helper()
	pw := rand.Text()
	hash, err := password.New(testPasswordParams, 1).Hash(context.Background(), pw)
	if err != nil {
		s.t.Fatal(err)
	}
	u := store.User{ID: uuid.NewString(), Email: email, EmailVerified: true, Name: name, PasswordHash: hash, CreatedAt: time.Now()}
	if err := s.db.CreateUser(context.Background(), u); err != nil {
		s.t.Fatal(err)
	}
	return testUser{User: u, Password: pw}
}
