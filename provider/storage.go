package provider

import (
	"context"
	"errors"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/storage"

	"github.com/twofold-id/twofold/store"
)

// Storage is everything fosite and the provider need from the store.
type Storage interface {
	fosite.ClientManager
	oauth2.CoreStorage
	oauth2.TokenRevocationStorage
	pkce.PKCERequestStorage
	storage.Transactional
	// CreateOIDCSession and GetOIDCSession keep an OpenID Connect session
	// under its code's signature (see fositeStorage).
	CreateOIDCSession(ctx context.Context, codeSignature string, r fosite.Requester) error
	GetOIDCSession(ctx context.Context, codeSignature string, r fosite.Requester) (fosite.Requester, error)
	// FlushCodeBatch writes a code's rows collected under store.WithCodeBatch.
	FlushCodeBatch(ctx context.Context) error
	GetOAuthClient(ctx context.Context, id string) (*store.Client, error)
	GetUser(ctx context.Context, id string) (store.User, error)
}

// fositeStorage is the storage fosite gets: the store, with clients read
// through a ClientCache, and OpenID Connect sessions keyed by their code's
// signature.
type fositeStorage struct {
	Storage
	clients *ClientCache
	codes   oauth2.AuthorizeCodeStrategy
}

var _ openid.OpenIDConnectRequestStorage = (*fositeStorage)(nil)

// GetOAuthClient reads through the cache.
func (s *fositeStorage) GetOAuthClient(ctx context.Context, id string) (*store.Client, error) {
	return s.clients.GetOAuthClient(ctx, id)
}

// GetClient implements fosite.ClientManager through the cache.
//
// fosite turns any error here into invalid_client: on the authorize
// endpoint "the client does not exist", on the token endpoint bad
// credentials. A store that cannot answer (the database unreachable) is
// neither, so its errors are marked temporarily_unavailable, which the
// endpoints find in the chain and answer with 503 (see unavailable).
func (s *fositeStorage) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.clients.GetOAuthClient(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, store.FositeNotFound(err)
	case err != nil:
		return nil, fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	return c, nil
}

// CreateOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
// fosite passes the code itself; the session is stored under the code's
// HMAC signature, the same key as the code and its PKCE record, so the
// token endpoint reads the three in one query and invalidating the code
// removes them together (see package store).
func (s *fositeStorage) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.CreateOIDCSession(ctx, s.codes.AuthorizeCodeSignature(ctx, code), r)
}

// GetOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *fositeStorage) GetOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) (fosite.Requester, error) {
	return s.GetOIDCSession(ctx, s.codes.AuthorizeCodeSignature(ctx, code), r)
}

// DeleteOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
// It does nothing: the session was deleted with the code's invalidation,
// in the transaction that issued the tokens.
func (s *fositeStorage) DeleteOpenIDConnectSession(context.Context, string) error { return nil }
