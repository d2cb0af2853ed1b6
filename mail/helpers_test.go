package mail_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-id/twofold/mail"
	"github.com/twofold-id/twofold/mail/mailtest"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
	"github.com/twofold-id/twofold/templates"
)

var ctx = context.Background()

// t0 is the tests' fixed starting time.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// secret stands for a reset link: it is in every test message's body and
// must never reach a log.
const secret = "reset-token-Zq7XkP3m"

// clock is a fixed clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one test's store, clock, templates and log.
type env struct {
	db     *store.DB
	clock  *clock
	tmpl   *templates.Set
	logs   *logBuffer
	mailer *mail.Mailer
}

// newEnv builds an env on db. When the test ends it checks that no body
// was logged.
func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	tmpl, err := templates.Load(templates.Brand{}, "")
	if err != nil {
		t.Fatalf("load templates: %v", err)
	}
	e := &env{db: db, clock: &clock{t: t0}, tmpl: tmpl, logs: &logBuffer{}}
	e.mailer = &mail.Mailer{Store: db, Templates: tmpl, Now: e.clock.Now}
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("a message body reached the log:\n%s", e.logs.String())
		}
	})
	return e
}

// newEnvOn builds an env on a fresh store of backend b.
func newEnvOn(t *testing.T, b storetest.Backend) *env { return newEnv(t, b.Open(t)) }

// testData is the data of the "test" email template.
type testData struct{ Name string }

// dataFor is the template data of a message to to: its body carries secret.
func dataFor(to string) testData { return testData{Name: to + " " + secret + " <b>"} }

// send enqueues the "test" email to to.
func (e *env) send(t *testing.T, to string) {
	t.Helper()
	if _, err := e.mailer.Send(ctx, to, "test", dataFor(to)); err != nil {
		t.Fatalf("send to %s: %v", to, err)
	}
}

// worker returns a worker on e's store that delivers to addr.
func (e *env) worker(t *testing.T, addr string, edit func(*mail.SMTPConfig)) *mail.Worker {
	t.Helper()
	return e.workerOn(t, e.db, addr, edit)
}

// workerOn returns a worker on db (another handle on e's database, as a
// second process would have) that delivers to addr.
func (e *env) workerOn(t *testing.T, db *store.DB, addr string, edit func(*mail.SMTPConfig)) *mail.Worker {
	t.Helper()
	cfg, err := mail.ParseSMTPURL("smtp://" + addr)
	if err != nil {
		t.Fatalf("parse smtp url: %v", err)
	}
	cfg.From = "twofold <noreply@example.com>"
	cfg.Timeout = 5 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	return &mail.Worker{
		Store: db, SMTP: cfg, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// deliver runs one DeliverDue and checks how many messages went out.
func deliver(t *testing.T, w *mail.Worker, want int) {
	t.Helper()
	n, err := w.DeliverDue(ctx)
	if err != nil {
		t.Fatalf("deliver due: %v", err)
	}
	if n != want {
		t.Fatalf("delivered %d messages, want %d", n, want)
	}
}

// getMail returns message id.
func (e *env) getMail(t *testing.T, id int64) store.Mail {
	t.Helper()
	m, err := e.db.GetMail(ctx, id)
	if err != nil {
		t.Fatalf("get mail %d: %v", id, err)
	}
	return m
}

// backlog returns how many messages wait.
func (e *env) backlog(t *testing.T) int {
	t.Helper()
	n, _, err := e.db.MailBacklog(ctx, e.clock.Now())
	if err != nil {
		t.Fatalf("backlog: %v", err)
	}
	return n
}

// recipients counts the messages the server received per recipient.
func recipients(msgs []mailtest.Message) map[string]int {
	seen := map[string]int{}
	for _, m := range msgs {
		seen[strings.Join(m.To, ",")]++
	}
	return seen
}

// user returns the address of the i-th test user.
func user(i int) string { return "user" + strconv.Itoa(i) + "@example.com" }
