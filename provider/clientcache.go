package provider

import (
	"context"
	"sync"
	"time"

	"github.com/twofold-id/twofold/store"
)

// ClientTTL is how long a client's registration is cached. A changed or
// deleted client (changed only by the operator's commands) takes effect on
// every instance within this time, including what the sign-in flow decides
// from it (the client's 2FA requirement, first-party consent); in
// exchange, client authentication on the token and introspection endpoints
// and the sign-in pages cost no database round trip.
const ClientTTL = 30 * time.Second

// maxCachedClients bounds the cache against requests naming many distinct
// client ids: past it, the cache starts over.
const maxCachedClients = 10000

// ClientReader reads a client registration.
type ClientReader interface {
	GetOAuthClient(ctx context.Context, id string) (*store.Client, error)
}

// ClientCache reads client registrations through a cache of ClientTTL. It
// is shared by the provider and the sign-in pages (package consent); the
// *store.Client it returns is shared too and must not be modified.
type ClientCache struct {
	src ClientReader
	now func() time.Time

	mu      sync.Mutex
	clients map[string]cachedClient
}

type cachedClient struct {
	c       *store.Client
	expires time.Time
}

// NewClientCache caches src's clients, timed by now.
func NewClientCache(src ClientReader, now func() time.Time) *ClientCache {
	return &ClientCache{src: src, now: now, clients: map[string]cachedClient{}}
}

// GetOAuthClient returns the client, from the cache while fresh. Misses and
// errors are not cached, so a client registered a moment ago is found at
// once.
func (cc *ClientCache) GetOAuthClient(ctx context.Context, id string) (*store.Client, error) {
	now := cc.now()
	cc.mu.Lock()
	e, ok := cc.clients[id]
	cc.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.c, nil
	}
	c, err := cc.src.GetOAuthClient(ctx, id)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	if len(cc.clients) >= maxCachedClients {
		clear(cc.clients)
	}
	cc.clients[id] = cachedClient{c: c, expires: now.Add(ClientTTL)}
	cc.mu.Unlock()
	return c, nil
}
