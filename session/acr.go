package session

import "slices"

// Authentication context classes twofold asserts in the ID token's acr, and
// that relying parties may ask for with acr_values.
const (
	// ACRPassword: the user proved a password only.
	ACRPassword = "urn:twofold:acr:pwd"
	// ACRMultiFactor: the user proved a password and a second factor.
	ACRMultiFactor = "urn:twofold:acr:mfa"
)

// ACR maps the methods a user authenticated with (RFC 8176 amr values) to
// the acr twofold asserts.
func ACR(amr []string) string {
	if slices.Contains(amr, "mfa") {
		return ACRMultiFactor
	}
	return ACRPassword
}
