package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// redirectURI is the benchmark application's callback. Nothing listens
// there: browsers stop at the redirect, as they would leave twofold.
const redirectURI = "http://127.0.0.1:9/callback"

// clientCreds are a registered client's id and secret.
type clientCreds struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// seed is what the scenarios sign in with, registered through twofold's
// own operator commands and pages.
type seed struct {
	web clientCreds // authorization_code + refresh_token, consent skipped
	// webES256 is web with ID tokens signed ES256: the sign-in scenarios'
	// application.
	webES256 clientCreds
	service  clientCreds // client_credentials
	// sessionUser has a password and no second factor: the browsers of
	// the live-session scenarios sign in as this user.
	sessionUser string
	password    string // every seeded user's password
	// pool are users with TOTP enrolled and their backup codes.
	pool *userPool
}

// seedBasics registers the clients, the session user and an
// organization, all with the binary's commands.
func seedBasics(ctx context.Context, e *env) (*seed, error) {
	s := &seed{sessionUser: "session@bench.example", password: rand.Text()}
	for _, c := range []struct {
		creds *clientCreds
		alg   string
	}{{&s.web, "RS256"}, {&s.webES256, "ES256"}} {
		out, err := e.command(ctx, "", "clients", "create", "--name", "Bench Web App "+c.alg, "--redirect-uri", redirectURI,
			"--skip-consent", "--grant-types", "authorization_code,refresh_token", "--id-token-alg", c.alg)
		if err == nil {
			err = json.Unmarshal(out, c.creds)
		}
		if err != nil {
			return nil, err
		}
	}
	out, err := e.command(ctx, "", "clients", "create", "--name", "Bench Service", "--grant-types", "client_credentials", "--scopes", "api")
	if err == nil {
		err = json.Unmarshal(out, &s.service)
	}
	if err != nil {
		return nil, err
	}
	if _, err := e.command(ctx, s.password+"\n", "users", "create", "--email", s.sessionUser, "--name", "Session User", "--password-stdin"); err != nil {
		return nil, err
	}
	if _, err := e.command(ctx, "", "orgs", "create", "--name", "Bench", "--owner", s.sessionUser); err != nil {
		return nil, err
	}
	return s, nil
}

// createUsers adds n users with the binary's `users create`, several
// processes at a time (each hashes a password with argon2id).
func (s *seed) createUsers(ctx context.Context, e *env, n int) ([]*benchUser, error) {
	users := make([]*benchUser, n)
	for i := range users {
		users[i] = &benchUser{email: fmt.Sprintf("user%05d@bench.example", i)}
	}
	return users, parallel(ctx, n, func(ctx context.Context, i int) error {
		_, err := e.command(ctx, s.password+"\n", "users", "create", "--email", users[i].email, "--password-stdin")
		return err
	})
}

// enrollAll turns TOTP on for every user through Security Settings, as a
// person would: sign in, open the enrollment page, read the secret, enter
// a code, keep the backup codes.
func (s *seed) enrollAll(ctx context.Context, h *harness, users []*benchUser) error {
	return parallel(ctx, len(users), func(ctx context.Context, i int) error {
		return s.enroll(ctx, h, users[i], fmt.Sprintf("10.1.%d.%d", i/250, i%250+1))
	})
}

// parallel runs fn(0..n-1), twice as many at once as there are cores,
// and returns the first error; after one, the rest are cancelled.
func parallel(ctx context.Context, n int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, 2*runtime.NumCPU())
	var wg sync.WaitGroup
	for i := range n {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := fn(ctx, i); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

func (s *seed) enroll(ctx context.Context, h *harness, u *benchUser, xff string) error {
	b := newBrowser(h.transport, h.env.issuer, xff)
	p, err := b.get(ctx, "/settings/security")
	if err == nil {
		p, err = b.login(ctx, p, u.email, s.password)
	}
	if err == nil {
		p, err = b.get(ctx, "/settings/security/totp")
	}
	if err != nil {
		return fmt.Errorf("enroll %s: %w", u.email, err)
	}
	m := secretOnPage.FindStringSubmatch(p.body)
	if m == nil {
		return fmt.Errorf("enroll %s: %w", u.email, p.unexpected("the enrollment page"))
	}
	u.secret = m[1]
	code, err := u.nextCode(time.Now())
	if err != nil {
		return err
	}
	p, err = b.post(ctx, "/settings/security/totp", url.Values{"code": {code}})
	if err != nil {
		return fmt.Errorf("enroll %s: %w", u.email, err)
	}
	for _, m := range codeOnPage.FindAllStringSubmatch(p.body, -1) {
		u.codes = append(u.codes, m[1])
	}
	if len(u.codes) != 10 {
		return fmt.Errorf("enroll %s: %w", u.email, p.unexpected("ten backup codes"))
	}
	return nil
}

// benchUser is a seeded user with TOTP: the authenticator app's secret,
// the last time step it gave a code for, and the unused backup codes.
type benchUser struct {
	email  string
	secret string
	last   int64
	codes  []string
}

// errNoStep means the user has no fresh TOTP step yet (the pool does not
// hand out such users).
var errNoStep = errors.New("no fresh TOTP time step for this user")

// nextCode returns the code of the earliest time step that twofold still
// accepts for this user. twofold accepts one step either side of now and
// each step once per user, and only a step later than the last accepted:
// so a user yields three codes at once and then one per 30 seconds. Step
// now-1 is skipped in the last 4 seconds of a step, when it could expire
// before the request arrives.
func (u *benchUser) nextCode(now time.Time) (string, error) {
	cur := now.Unix() / 30
	low := cur - 1
	if 30-now.Unix()%30 <= 4 {
		low = cur
	}
	s := max(u.last+1, low)
	if s > cur+1 {
		return "", errNoStep
	}
	u.last = s
	return totp.GenerateCodeCustom(u.secret, time.Unix(s*30, 0),
		totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

// userPool lends users to workers, one worker per user at a time, so no
// two sign-ins race for one user's TOTP step or backup code.
type userPool struct {
	mu   sync.Mutex
	idle []*benchUser
	// waited is how long workers waited for a usable user: a pool too
	// small for the throughput shows here instead of in latency.
	waited time.Duration
}

// take lends an idle user for which usable holds, waiting if there is
// none; errStopped if the level ends meanwhile.
func (p *userPool) take(ctx context.Context, usable func(*benchUser) bool) (*benchUser, error) {
	start := time.Now()
	for {
		p.mu.Lock()
		for i, u := range p.idle {
			if usable(u) {
				p.idle[i] = p.idle[len(p.idle)-1]
				p.idle = p.idle[:len(p.idle)-1]
				if w := time.Since(start); w > time.Millisecond {
					p.waited += w
				}
				p.mu.Unlock()
				return u, nil
			}
		}
		p.mu.Unlock()
		if end := stopAt(ctx); !end.IsZero() && time.Now().After(end) {
			return nil, errStopped
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// put returns a user to the pool.
func (p *userPool) put(u *benchUser) {
	p.mu.Lock()
	p.idle = append(p.idle, u)
	p.mu.Unlock()
}

// totpReady says whether u can give a fresh code now and until it is used:
// its last step is at most the current one, so step last+1 is at most
// current+1, which twofold accepts from now on.
func totpReady(u *benchUser) bool { return u.last <= time.Now().Unix()/30 }

// hasCodes says whether u has an unused backup code.
func hasCodes(u *benchUser) bool { return len(u.codes) > 0 }

// takeWaited returns and resets the time workers waited for users.
func (p *userPool) takeWaited() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.waited
	p.waited = 0
	return w
}
