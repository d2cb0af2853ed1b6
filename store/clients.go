package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
)

var (
	_ fosite.Client             = (*Client)(nil)
	_ fosite.ResponseModeClient = (*Client)(nil)
)

// GetID implements fosite.Client.
func (c *Client) GetID() string { return c.ID }

// GetHashedSecret implements fosite.Client.
func (c *Client) GetHashedSecret() []byte { return c.SecretHash }

// GetRedirectURIs implements fosite.Client.
func (c *Client) GetRedirectURIs() []string { return c.RedirectURIs }

// GetGrantTypes implements fosite.Client.
func (c *Client) GetGrantTypes() fosite.Arguments { return c.GrantTypes }

// GetResponseTypes implements fosite.Client: only the code flow exists.
func (c *Client) GetResponseTypes() fosite.Arguments { return fosite.Arguments{"code"} }

// GetScopes implements fosite.Client.
func (c *Client) GetScopes() fosite.Arguments { return c.Scopes }

// IsPublic implements fosite.Client.
func (c *Client) IsPublic() bool { return c.Public }

// GetAudience implements fosite.Client; twofold does not use audiences.
func (c *Client) GetAudience() fosite.Arguments { return nil }

// GetResponseModes implements fosite.ResponseModeClient: only query.
// form_post would need an auto-submitting page with inline script, which
// twofold's CSP forbids, and fragment exists only for the implicit flows
// twofold does not have.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeDefault, fosite.ResponseModeQuery}
}

const clientColumns = `id, secret_hash, name, redirect_uris, post_logout_redirect_uris, grant_types, scopes,
	public, skip_consent, require_pkce, require_2fa, id_token_alg, created_at`

// CreateClient registers c; the id must be unused (ErrConflict).
func (db *DB) CreateClient(ctx context.Context, c Client) error {
	_, err := db.exec(ctx, `INSERT INTO oauth2_clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		c.ID, c.SecretHash, c.Name, jsonList(c.RedirectURIs), jsonList(c.PostLogoutRedirectURIs),
		jsonList(c.GrantTypes), jsonList(c.Scopes), c.Public, c.SkipConsent, c.RequirePKCE, c.Require2FA,
		cmp.Or(c.IDTokenAlg, AlgRS256), utc(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("create client %s: %w", c.ID, err)
	}
	return nil
}

// clientScan holds a client row's raw columns; scanning the JSON lists is a
// second step so a client can be read as part of a wider row.
type clientScan struct {
	c                                        Client
	redirects, postLogout, grantTypes, scope string
}

func (s *clientScan) dest() []any {
	return []any{&s.c.ID, &s.c.SecretHash, &s.c.Name, &s.redirects, &s.postLogout, &s.grantTypes, &s.scope,
		&s.c.Public, &s.c.SkipConsent, &s.c.RequirePKCE, &s.c.Require2FA, &s.c.IDTokenAlg, &s.c.CreatedAt}
}

func (s *clientScan) client() (*Client, error) {
	c := s.c
	var err error
	for _, l := range []struct {
		dst *[]string
		src string
	}{{&c.RedirectURIs, s.redirects}, {&c.PostLogoutRedirectURIs, s.postLogout}, {&c.GrantTypes, s.grantTypes}, {&c.Scopes, s.scope}} {
		if *l.dst, err = parseList(l.src); err != nil {
			return nil, fmt.Errorf("client %s: %w", c.ID, err)
		}
	}
	return &c, nil
}

// GetOAuthClient returns the client with id.
func (db *DB) GetOAuthClient(ctx context.Context, id string) (*Client, error) {
	var s clientScan
	err := db.q(ctx).QueryRowContext(ctx, `SELECT `+clientColumns+` FROM oauth2_clients WHERE id = $1`, id).Scan(s.dest()...)
	if err != nil {
		return nil, fmt.Errorf("get client %s: %w", id, notFound(err))
	}
	return s.client()
}

// ListClients returns every registered client.
func (db *DB) ListClients(ctx context.Context) ([]*Client, error) {
	rows, err := db.q(ctx).QueryContext(ctx, `SELECT `+clientColumns+` FROM oauth2_clients ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	defer rows.Close()
	var out []*Client
	for rows.Next() {
		var s clientScan
		if err := rows.Scan(s.dest()...); err != nil {
			return nil, err
		}
		c, err := s.client()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// GetClient implements fosite.ClientManager.
func (db *DB) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := db.GetOAuthClient(ctx, id)
	if err != nil {
		return nil, FositeNotFound(err)
	}
	return c, nil
}

// ClientAssertionJWTValid implements fosite.ClientManager. twofold accepts no
// JWT client assertions, so no JTI is ever known.
func (db *DB) ClientAssertionJWTValid(ctx context.Context, jti string) error { return nil }

// SetClientAssertionJWT implements fosite.ClientManager; see
// ClientAssertionJWTValid.
func (db *DB) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	return nil
}

// prefixed qualifies each column of a comma-separated list with p ("c.").
func prefixed(p, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// AllowsPostLogoutRedirect reports whether uri is exactly one of the
// client's registered post-logout redirect URIs.
func (c *Client) AllowsPostLogoutRedirect(uri string) bool {
	return uri != "" && slices.Contains(c.PostLogoutRedirectURIs, uri)
}

// UpdateClient replaces every registered property of client c.ID.
func (db *DB) UpdateClient(ctx context.Context, c Client) error {
	err := db.execOne(ctx, `UPDATE oauth2_clients SET secret_hash = $2, name = $3, redirect_uris = $4,
		post_logout_redirect_uris = $5, grant_types = $6, scopes = $7, public = $8, skip_consent = $9,
		require_pkce = $10, require_2fa = $11, id_token_alg = $12 WHERE id = $1`,
		c.ID, c.SecretHash, c.Name, jsonList(c.RedirectURIs), jsonList(c.PostLogoutRedirectURIs), jsonList(c.GrantTypes),
		jsonList(c.Scopes), c.Public, c.SkipConsent, c.RequirePKCE, c.Require2FA, cmp.Or(c.IDTokenAlg, AlgRS256))
	if err != nil {
		return fmt.Errorf("update client %s: %w", c.ID, err)
	}
	return nil
}
