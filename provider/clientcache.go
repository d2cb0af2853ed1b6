package provider

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ory/fosite"

	"github.com/twofold-id/twofold/store"
)

// ClientTTL is how long a client's registration is cached. A changed or
// deleted client (changed only by the operator's commands) takes effect on
// every instance within this time; in exchange, client authentication on
// the token and introspection endpoints costs no database round trip.
const ClientTTL = 30 * time.Second

// cachingStorage is the fosite storage with clients cached for ClientTTL.
type cachingStorage struct {
	Storage
	now func() time.Time

	mu      sync.Mutex
	clients map[string]cachedClient
}

type cachedClient struct {
	c       *store.Client
	expires time.Time
}

func newCachingStorage(s Storage, now func() time.Time) *cachingStorage {
	return &cachingStorage{Storage: s, now: now, clients: map[string]cachedClient{}}
}

// GetOAuthClient returns the client, from the cache while fresh. Misses are
// not cached, so a client registered a moment ago is found at once.
func (s *cachingStorage) GetOAuthClient(ctx context.Context, id string) (*store.Client, error) {
	now := s.now()
	s.mu.Lock()
	e, ok := s.clients[id]
	s.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.c, nil
	}
	c, err := s.Storage.GetOAuthClient(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.clients) > 10000 { // bound memory against many distinct ids
		clear(s.clients)
	}
	s.clients[id] = cachedClient{c: c, expires: now.Add(ClientTTL)}
	s.mu.Unlock()
	return c, nil
}

// GetClient implements fosite.ClientManager through the cache.
//
// fosite turns any error here into invalid_client: on the authorize
// endpoint "the client does not exist", on the token endpoint bad
// credentials. A store that cannot answer (the database unreachable) is
// neither, so its errors are marked temporarily_unavailable, which the
// endpoints find in the chain and answer with 503 (see unavailable).
func (s *cachingStorage) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.GetOAuthClient(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, store.FositeNotFound(err)
	case err != nil:
		return nil, fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	return c, nil
}
