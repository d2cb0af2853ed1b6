package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// An authorization code has two companion rows under its signature: its
// PKCE challenge (kind pkce) and its OpenID Connect session (kind oidc:
// nonce and ID token claims). fosite writes, reads and deletes the three
// separately; the store keeps them together:
//
//   - The authorization endpoint writes all three in one INSERT
//     (WithCodeBatch, FlushCodeBatch), so no code exists without its
//     challenge, even when a write fails half-way.
//   - The token endpoint reads all three in one query (WithCodeReads) and
//     serves fosite's later reads within that request from it.
//   - Invalidating the code deletes the companions in the same transaction
//     (InvalidateAuthorizeCodeSession). Until then they stay: fosite's own
//     DeletePKCERequestSession, which runs before the verifier is checked,
//     is a no-op, so a failed exchange can neither strip the PKCE binding
//     from a live code nor leave a code that can no longer be redeemed.

// codeFamily reports whether kind is a code or one of its companions.
func codeFamily(kind string) bool {
	return kind == kindCode || kind == kindPKCE || kind == kindOIDC
}

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (db *DB) CreateAuthorizeCodeSession(ctx context.Context, signature string, r fosite.Requester) error {
	return db.createRequest(ctx, kindCode, signature, r)
}

// GetAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage; a used
// code returns its request with fosite.ErrInvalidatedAuthorizeCode.
func (db *DB) GetAuthorizeCodeSession(ctx context.Context, signature string, sess fosite.Session) (fosite.Requester, error) {
	return db.getRequest(ctx, kindCode, signature, sess, fosite.ErrInvalidatedAuthorizeCode)
}

// InvalidateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
// It is the single-use point of an authorization code: one conditional
// write, so of many concurrent redemptions exactly one changes the row and
// the others get fosite.ErrInvalidatedAuthorizeCode. The code's PKCE and
// OpenID Connect rows go in the same transaction. The write also takes
// the user's row (heldByUser), before the tokens are written, so a
// concurrent owner's reset and the exchange lock in the same order.
func (db *DB) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	return db.InTx(ctx, func(ctx context.Context) error {
		err := db.execOne(ctx, `UPDATE oauth2_sessions SET active = FALSE
			WHERE kind = $1 AND signature = $2 AND active AND `+db.heldByUser(), kindCode, signature)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("invalidate code: %w", fosite.ErrInvalidatedAuthorizeCode)
		}
		if err != nil {
			return fmt.Errorf("invalidate code: %w", err)
		}
		if _, err := db.exec(ctx, `DELETE FROM oauth2_sessions WHERE kind IN ($1, $2) AND signature = $3`,
			kindPKCE, kindOIDC, signature); err != nil {
			return fmt.Errorf("delete the code's pkce and oidc records: %w", err)
		}
		if m := codeReadsOf(ctx); m != nil {
			m.invalidated(signature)
		}
		return nil
	})
}

// CreatePKCERequestSession implements pkce.PKCERequestStorage.
func (db *DB) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return db.createRequest(ctx, kindPKCE, signature, r)
}

// GetPKCERequestSession implements pkce.PKCERequestStorage.
func (db *DB) GetPKCERequestSession(ctx context.Context, signature string, sess fosite.Session) (fosite.Requester, error) {
	return db.getRequest(ctx, kindPKCE, signature, sess, fosite.ErrNotFound)
}

// DeletePKCERequestSession implements pkce.PKCERequestStorage. It does
// nothing: the record goes when its code is invalidated (see above).
func (db *DB) DeletePKCERequestSession(context.Context, string) error { return nil }

// CreateOIDCSession stores the OpenID Connect session of the code whose
// signature is codeSignature. (fosite's OpenIDConnectRequestStorage passes
// the code itself, which must not be stored; the provider adapts it.)
func (db *DB) CreateOIDCSession(ctx context.Context, codeSignature string, r fosite.Requester) error {
	return db.createRequest(ctx, kindOIDC, codeSignature, r)
}

// GetOIDCSession reads the OpenID Connect session of the code whose
// signature is codeSignature into r's session; a missing one is
// openid.ErrNoSessionFound. It has no delete: the session goes when its
// code is invalidated.
func (db *DB) GetOIDCSession(ctx context.Context, codeSignature string, r fosite.Requester) (fosite.Requester, error) {
	req, err := db.getRequest(ctx, kindOIDC, codeSignature, r.GetSession(), openid.ErrNoSessionFound)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", openid.ErrNoSessionFound, err)
	}
	return req, err
}

type codeReadsKey struct{}

// codeReads holds the rows of the codes read during one token request.
type codeReads struct {
	mu   sync.Mutex
	rows map[string]map[string]storedRow // signature → kind → row
}

// WithCodeReads returns a context for one token request in which reading
// an authorization code, its PKCE record or its OpenID Connect session
// loads all three in one query, and later reads of them are served from
// that query. fosite reads the code twice and each companion once per
// exchange; this makes it one round trip. Nothing outlives the request,
// and the single use of the code does not rest on it: that is the
// conditional write in InvalidateAuthorizeCodeSession, which also marks
// the code used here. The companions stay readable here after it deleted
// them, which is what the exchange that invalidated the code needs.
func WithCodeReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, codeReadsKey{}, &codeReads{rows: map[string]map[string]storedRow{}})
}

func codeReadsOf(ctx context.Context) *codeReads {
	m, _ := ctx.Value(codeReadsKey{}).(*codeReads)
	return m
}

// get returns the row (kind, signature), loading the signature's code
// family on first use. Each call gets its own copy of the request's lists.
func (m *codeReads) get(ctx context.Context, db *DB, kind, signature string) (storedRow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	family, ok := m.rows[signature]
	if !ok {
		var err error
		if family, err = db.loadCodeFamily(ctx, signature); err != nil {
			return storedRow{}, err
		}
		m.rows[signature] = family
	}
	row, ok := family[kind]
	if !ok {
		return storedRow{}, ErrNotFound
	}
	r := &row.req
	r.Form = maps.Clone(r.Form)
	for k, v := range r.Form {
		r.Form[k] = slices.Clone(v)
	}
	r.RequestedScopes, r.GrantedScopes = slices.Clone(r.RequestedScopes), slices.Clone(r.GrantedScopes)
	r.RequestedAudience, r.GrantedAudience = slices.Clone(r.RequestedAudience), slices.Clone(r.GrantedAudience)
	return row, nil
}

// invalidated records that the code under signature is used.
func (m *codeReads) invalidated(signature string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if row, ok := m.rows[signature][kindCode]; ok {
		row.active = false
		m.rows[signature][kindCode] = row
	}
}

// loadCodeFamily reads the code under signature and its companions.
func (db *DB) loadCodeFamily(ctx context.Context, signature string) (map[string]storedRow, error) {
	rows, err := db.q(ctx).QueryContext(ctx, sessionSelect+`
		WHERE s.kind IN ($1, $2, $3) AND s.signature = $4`, kindCode, kindPKCE, kindOIDC, signature)
	if err != nil {
		return nil, notFound(err)
	}
	defer rows.Close()
	family := map[string]storedRow{}
	for rows.Next() {
		kind, row, err := scanStoredRow(rows.Scan)
		if err != nil {
			return nil, err
		}
		family[kind] = row
	}
	return family, notFound(rows.Err())
}

type codeBatchKey struct{}

// codeBatch collects the rows the authorization endpoint writes for one
// code.
type codeBatch struct {
	mu   sync.Mutex
	rows []sessionRow
}

func (b *codeBatch) add(row sessionRow) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rows = append(b.rows, row)
}

// WithCodeBatch returns a context in which creating an authorization code,
// its PKCE record or its OpenID Connect session only collects the row;
// FlushCodeBatch writes them together. The authorization endpoint must
// flush before it sends the code, and send nothing if the flush fails.
func WithCodeBatch(ctx context.Context) context.Context {
	return context.WithValue(ctx, codeBatchKey{}, &codeBatch{})
}

func codeBatchOf(ctx context.Context) *codeBatch {
	b, _ := ctx.Value(codeBatchKey{}).(*codeBatch)
	return b
}

// FlushCodeBatch writes the rows collected under ctx (WithCodeBatch) in one
// INSERT: all or none, and none with ErrUserInactive when the code's user
// is gone or has a pending 2FA reset (see insertSessions). Without a
// batch, or with nothing in it, it does nothing.
func (db *DB) FlushCodeBatch(ctx context.Context) error {
	b := codeBatchOf(ctx)
	if b == nil {
		return nil
	}
	b.mu.Lock()
	rows := b.rows
	b.rows = nil
	b.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	if err := db.insertSessions(ctx, rows); err != nil {
		return fmt.Errorf("store authorization code: %w", err)
	}
	return nil
}
