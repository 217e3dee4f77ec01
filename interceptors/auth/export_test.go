package auth

// Test hooks: not part of the public API.
var (
	WithTimeFunc = withTimeFunc
	ParseJWKS    = func(data []byte) (int, error) { s, err := parseJWKS(data); return len(s), err }
)

// MatchRule returns the Method of the rule that decides method under
// rules (health and reflection included), "" if none.
func MatchRule(rules []Rule, method string) (string, error) {
	rs, err := newRuleSet(rules)
	if err != nil {
		return "", err
	}
	if r := rs.match(method); r != nil {
		return r.Method, nil
	}
	return "", nil
}

// CacheLen returns the number of tokens v's cache holds.
func CacheLen(v *JWT) int {
	if v.cache == nil {
		return 0
	}
	return v.cache.len()
}
