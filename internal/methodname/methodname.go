// Package methodname splits gRPC full method names: the one helper for
// that fact, shared by the interceptor packages.
package methodname

// Split splits "/pkg.Service/Method" into "/pkg.Service" and "Method" at
// the last '/'. ok is false unless full starts with '/' and both parts are
// non-empty.
func Split(full string) (service, method string, ok bool) {
	if len(full) < 4 || full[0] != '/' {
		return "", "", false
	}
	for i := len(full) - 1; i > 1; i-- {
		if full[i] == '/' {
			if i == len(full)-1 {
				return "", "", false
			}
			return full[:i], full[i+1:], true
		}
	}
	return "", "", false
}
