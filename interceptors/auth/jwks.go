package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// maxJWKS bounds a JWKS document read from a file or URL.
const maxJWKS = 1 << 20

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// jwk is one JSON Web Key (RFC 7517, RFC 7518 section 6, RFC 8037), the
// fields of public keys only.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// publicKey is a verification key and the algorithm its JWK names ("" for
// any that fits the key).
type publicKey struct {
	key crypto.PublicKey
	alg string
}

// keySet maps kid to key. A key without a kid is held under "".
type keySet map[string]publicKey

// parseJWKS parses a JWK Set. Keys of other types or curves, and keys
// whose "use" is not "sig", are skipped: an issuer adding a key type this
// package does not know must not break verification with the others. A
// malformed key of a known type, or two keys with one kid, fail the set.
func parseJWKS(data []byte) (keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("auth: JWKS: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New("auth: JWKS: no \"keys\" array")
	}
	set := keySet{}
	for i, raw := range doc.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("auth: JWKS: key %d: %w", i, err)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		key, err := k.public()
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS: key %d (kid %q): %w", i, k.Kid, err)
		}
		if key == nil {
			continue
		}
		if _, dup := set[k.Kid]; dup {
			return nil, fmt.Errorf("auth: JWKS: two keys with kid %q", k.Kid)
		}
		set[k.Kid] = publicKey{key: key, alg: k.Alg}
	}
	return set, nil
}

// public returns the key, nil for a type or curve this package skips.
func (k *jwk) public() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := b64(k.N)
		if err != nil {
			return nil, fmt.Errorf("n: %w", err)
		}
		e, err := b64(k.E)
		if err != nil {
			return nil, fmt.Errorf("e: %w", err)
		}
		if len(e) == 0 || len(e) > 4 || len(n) == 0 || n[0] == 0 {
			return nil, errors.New("invalid RSA modulus or exponent")
		}
		var exp int
		for _, b := range e {
			exp = exp<<8 | int(b)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
		if pub.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits, want at least %d", pub.N.BitLen(), minRSABits)
		}
		if exp < 3 || exp%2 == 0 {
			return nil, errors.New("invalid RSA exponent")
		}
		return pub, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return nil, nil
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64(k.X)
		if err != nil {
			return nil, fmt.Errorf("x: %w", err)
		}
		y, err := b64(k.Y)
		if err != nil {
			return nil, fmt.Errorf("y: %w", err)
		}
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("%s coordinates of %d and %d bytes, want %d", k.Crv, len(x), len(y), size)
		}
		point := make([]byte, 0, 1+2*size)
		point = append(append(append(point, 4), x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, err
		}
		return pub, nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, nil
		}
		x, err := b64(k.X)
		if err != nil {
			return nil, fmt.Errorf("x: %w", err)
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("Ed25519 key of %d bytes, want %d", len(x), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, nil
}

// b64 decodes base64url without padding (RFC 7515 section 2); trailing
// padding is tolerated.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
