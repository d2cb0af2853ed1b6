package provider

import (
	"context"

	"github.com/ory/fosite/token/jwt"
)

// jwtSigner is fosite's JWT signer. It signs with the keyring's active key
// of the context's algorithm (WithSigningAlg; RS256 by default), and
// verifies a token, an id_token_hint in practice, against the published key
// its kid names: fosite's own DefaultSigner verifies with the active key of
// the context's algorithm only, so an ES256 client's hint failed at the
// authorization endpoint, and a hint signed before a rotation failed at the
// token endpoint after the code was spent.
type jwtSigner struct {
	*jwt.DefaultSigner
	keys *Keyring
}

func newJWTSigner(keys *Keyring) *jwtSigner {
	return &jwtSigner{DefaultSigner: &jwt.DefaultSigner{GetPrivateKey: keys.PrivateKey}, keys: keys}
}

// Decode parses and verifies token. As with fosite's, an expired token
// comes back with a jwt.ValidationError that says so.
func (s *jwtSigner) Decode(_ context.Context, token string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		alg, _ := t.Header["alg"].(string)
		return s.keys.verificationKey(kid, alg)
	})
}

// Validate verifies token and returns its signature.
func (s *jwtSigner) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}
