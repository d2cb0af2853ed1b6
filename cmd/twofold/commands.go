package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/twofold-id/twofold/password"
	"github.com/twofold-id/twofold/provider"
	"github.com/twofold-id/twofold/store"
)

// withApp parses a command's flags, runs check on them (so a usage error
// touches nothing), and opens the app around fn.
func withApp(ctx context.Context, e env, f *flags, args []string, check func() error, fn func(*app) error) error {
	dev := f.Bool("dev", false, "use development defaults (the generated secret key under data_dir)")
	if err := f.parse(args); err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	a, err := openApp(ctx, e, f.config, *dev)
	if err != nil {
		return err
	}
	defer a.close()
	return fn(a)
}

// printJSON writes v as one indented JSON document.
func printJSON(e env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdMigrate(ctx context.Context, e env, args []string) error {
	// openApp migrates; this command exists so operators can do it before
	// rolling out new instances.
	return withApp(ctx, e, newFlags("migrate", e), args, nil, func(a *app) error {
		return printJSON(e, map[string]any{"dialect": a.db.Dialect(), "status": "migrated"})
	})
}

func cmdUsersCreate(ctx context.Context, e env, args []string) error {
	f := newFlags("users create", e)
	email := f.String("email", "", "email address (required)")
	name := f.String("name", "", "display name")
	stdin := f.Bool("password-stdin", false, "read the password from standard input (required)")
	check := func() error {
		if !validEmail(*email) || !*stdin {
			return fmt.Errorf("%w: --email with a valid address and --password-stdin are required", errUsage)
		}
		return nil
	}
	return withApp(ctx, e, f, args, check, func(a *app) error {
		pw, err := readPassword(e.stdin)
		if err != nil {
			return err
		}
		if err := checkPassword(pw); err != nil {
			return err
		}
		hash, err := password.New(a.passwordParams, 0).Hash(ctx, pw)
		if err != nil {
			return err
		}
		u := store.User{ID: uuid.NewString(), Email: *email, Name: *name, PasswordHash: hash, CreatedAt: time.Now()}
		if err := a.db.CreateUser(ctx, u); errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("a user with email %s already exists", store.NormalizeEmail(*email))
		} else if err != nil {
			return err
		}
		return printJSON(e, map[string]string{"id": u.ID, "email": store.NormalizeEmail(u.Email)})
	})
}

func cmdOrgsCreate(ctx context.Context, e env, args []string) error {
	f := newFlags("orgs create", e)
	name := f.String("name", "", "organization name (required, unique)")
	owner := f.String("owner", "", "email of the first owner (required; the user must exist)")
	require2FA := f.Bool("require-2fa", false, "require every member to use a second factor")
	check := func() error {
		if strings.TrimSpace(*name) == "" || *owner == "" {
			return fmt.Errorf("%w: --name and --owner are required", errUsage)
		}
		return nil
	}
	return withApp(ctx, e, f, args, check, func(a *app) error {
		org := store.Organization{ID: uuid.NewString(), Name: strings.TrimSpace(*name), Require2FA: *require2FA, CreatedAt: time.Now()}
		err := a.db.InTx(ctx, func(ctx context.Context) error {
			u, err := a.db.GetUserByEmail(ctx, *owner)
			if err != nil {
				return fmt.Errorf("owner %s: %w", *owner, err)
			}
			if err := a.db.CreateOrganization(ctx, org); errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("an organization named %q already exists", org.Name)
			} else if err != nil {
				return err
			}
			return a.db.PutMembership(ctx, store.Membership{OrgID: org.ID, UserID: u.ID, Role: store.RoleOwner, CreatedAt: org.CreatedAt})
		})
		if err != nil {
			return err
		}
		return printJSON(e, map[string]any{"id": org.ID, "name": org.Name, "require_2fa": org.Require2FA})
	})
}

func cmdOrgsAddMember(ctx context.Context, e env, args []string) error {
	f := newFlags("orgs add-member", e)
	orgName := f.String("org", "", "organization name (required)")
	email := f.String("email", "", "email of the user to add (required; the user must exist)")
	role := f.String("role", "member", "owner or member")
	check := func() error {
		if *orgName == "" || *email == "" || !store.Role(*role).Valid() {
			return fmt.Errorf("%w: --org and --email are required; --role is owner or member", errUsage)
		}
		return nil
	}
	return withApp(ctx, e, f, args, check, func(a *app) error {
		org, err := a.db.GetOrganizationByName(ctx, *orgName)
		if err != nil {
			return fmt.Errorf("organization %q: %w", *orgName, err)
		}
		u, err := a.db.GetUserByEmail(ctx, *email)
		if err != nil {
			return fmt.Errorf("user %s: %w", *email, err)
		}
		m := store.Membership{OrgID: org.ID, UserID: u.ID, Role: store.Role(*role), CreatedAt: time.Now()}
		if err := a.db.PutMembership(ctx, m); err != nil {
			return err
		}
		return printJSON(e, map[string]string{"org_id": org.ID, "user_id": u.ID, "role": *role})
	})
}

func cmdKeysRotate(ctx context.Context, e env, args []string) error {
	return withApp(ctx, e, newFlags("keys rotate", e), args, nil, func(a *app) error {
		keys := &provider.Keyring{Store: a.db, Sealer: a.sealer, Now: time.Now, Retain: a.cfg.IDTokenLifespan, Log: a.log}
		if err := keys.Load(ctx); err != nil {
			return err
		}
		previous := map[string]string{}
		for _, alg := range provider.SigningAlgs {
			previous[alg] = keys.ActiveKID(alg)
		}
		kids, err := keys.Rotate(ctx)
		if err != nil {
			return err
		}
		return printJSON(e, map[string]any{"kids": kids, "previous_kids": previous,
			"previous_published_until": time.Now().Add(a.cfg.IDTokenLifespan).UTC().Format(time.RFC3339)})
	})
}

// validEmail is a sanity check, not RFC 5322: one @, something either side.
func validEmail(s string) bool {
	s = strings.TrimSpace(s)
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(s, " \t\r\n<>") && !strings.Contains(domain, "@")
}

// checkPassword enforces the password policy: NIST SP 800-63B length
// limits, no composition rules.
func checkPassword(pw string) error {
	if len([]rune(pw)) < 8 {
		return errors.New("password must be at least 8 characters")
	}
	if len(pw) > password.MaxLen {
		return fmt.Errorf("password must be at most %d bytes", password.MaxLen)
	}
	return nil
}

// newClientSecret is 256 random bits, base64url.
func newClientSecret() string { return rand.Text() + rand.Text() }

var knownGrantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}

// validRedirectURI accepts absolute URIs without fragments: https; http
// only for loopback hosts (RFC 8252 native apps and local development); and
// private-use schemes of native apps (com.example.app:/cb). Schemes a
// browser would execute or read locally are refused.
func validRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || strings.Contains(raw, "#") {
		return fmt.Errorf("redirect URI %q must be absolute and have no fragment", raw)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("redirect URI %q has no host", raw)
		}
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("redirect URI %q must be https (http only for localhost)", raw)
		}
	case "javascript", "data", "file", "vbscript", "blob", "about", "ftp", "ws", "wss":
		return fmt.Errorf("redirect URI %q uses a forbidden scheme", raw)
	default:
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Errorf("redirect URI %q: a native app's scheme must be reverse-DNS, like com.example.app", raw)
		}
	}
	return nil
}

func checkGrantTypes(l []string) error {
	if len(l) == 0 {
		return errors.New("at least one grant type is required")
	}
	for _, g := range l {
		if !slices.Contains(knownGrantTypes, g) {
			return fmt.Errorf("grant type %q is not one of %s", g, strings.Join(knownGrantTypes, ", "))
		}
	}
	return nil
}
