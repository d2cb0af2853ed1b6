package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// TestLookupByUnstorableText: a key PostgreSQL cannot hold in a text
// column (a NUL byte, invalid UTF-8) finds nothing, as on SQLite, instead
// of failing. Such keys come straight from requests (flow, ceremony,
// client and organization ids, emails, token signatures), and a failure
// would be a 5xx for bad input.
func TestLookupByUnstorableText(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		db := b.Open(t)
		ctx := context.Background()
		now := time.Now()
		for _, key := range []string{"\x00", "flow\x00", "\xff\xfe", "a.\xc0\xaf"} {
			lookups := map[string]error{}
			_, lookups["login flow"] = db.GetLoginFlow(ctx, key, now)
			_, lookups["user by email"] = db.GetUserByEmail(ctx, key)
			_, lookups["user"] = db.GetUser(ctx, key)
			_, lookups["membership"] = db.GetMembership(ctx, key, key)
			_, lookups["organization"] = db.GetOrganization(ctx, key)
			_, lookups["webauthn ceremony"] = db.ConsumeWebAuthnCeremony(ctx, key, "login", key, key, now)
			_, lookups["client"] = db.GetOAuthClient(ctx, key)
			_, lookups["consent grant"] = db.GetConsentGrant(ctx, key, key)
			for what, err := range lookups {
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s %q: %v, want ErrNotFound", what, key, err)
				}
			}
			sess := &openid.DefaultSession{}
			fositeLookups := map[string]error{}
			_, fositeLookups["client"] = db.GetClient(ctx, key)
			_, fositeLookups["authorization code"] = db.GetAuthorizeCodeSession(ctx, key, sess)
			_, fositeLookups["access token"] = db.GetAccessTokenSession(ctx, key, sess)
			_, fositeLookups["refresh token"] = db.GetRefreshTokenSession(ctx, key, sess)
			_, fositeLookups["PKCE"] = db.GetPKCERequestSession(ctx, key, sess)
			for what, err := range fositeLookups {
				if !errors.Is(err, fosite.ErrNotFound) {
					t.Errorf("fosite %s %q: %v, want fosite.ErrNotFound", what, key, err)
				}
			}
		}
	})
}
