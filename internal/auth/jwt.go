package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/tokensecret"
)

// Limits and policy of login-token verification.
const (
	// jwtMaxTokenBytes is the largest token Verify will look at.
	jwtMaxTokenBytes = 8 << 10
	// jwtMaxIDBytes is the longest accepted `sub` (user id) or
	// organisation id.
	jwtMaxIDBytes = 255
	// jwtLeeway is the clock skew tolerated on exp, nbf and iat.
	jwtLeeway = 30 * time.Second
	// jwtInvalidMessage is the one message of every verification failure, so
	// that the cause does not leak to the client.
	jwtInvalidMessage = "invalid or expired token"
	// jwtUnavailableMessage answers a token that needs the identity
	// provider's key set while it cannot be fetched.
	jwtUnavailableMessage = "login tokens cannot be verified now: the identity provider is unreachable; try again later"
)

// Causes of a rejected token. They are sentinel values so that the failure
// category can be logged; they never reach the caller of Verify.
var (
	errJWTMalformed        = errors.New("jwt: malformed token")
	errJWTAlgNotAllowed    = errors.New("jwt: algorithm not allowed for key")
	errJWTCritHeader       = errors.New("jwt: crit header not supported")
	errJWTBadSubject       = errors.New("jwt: invalid subject")
	errJWKSUnknownKey      = errors.New("jwks: unknown key id")
	errJWKSUnavailable     = errors.New("jwks: key set unavailable")
	errJWTConfigExactlyOne = errors.New("auth: JWT config needs exactly one of Secret or JWKSURL")
)

// JWTConfig configures login-token verification. Exactly one of Secret or JWKSURL is set.
type JWTConfig struct {
	Secret     []byte           // HS256, at least 32 bytes
	JWKSURL    string           // RS256, ES256 and EdDSA keys from this JWK set
	Issuer     string           // optional; when set, `iss` must equal it
	Audience   string           // optional; when set, `aud` must contain it
	HTTPClient *http.Client     // optional; used for JWKS fetches
	Logger     *slog.Logger     // optional; failure categories are logged at Debug
	Now        func() time.Time // optional, for tests

	// Identity-provider mode (ORG_CLAIM, docs/organisations.md): the paths
	// of claim names, into nested objects, of the organisation a token acts
	// for and of its role there, and the provider's roles as ours.
	OrgClaim     []string               // nil: tokens act for no organisation
	OrgRoleClaim []string               // nil: every token is a member
	OrgRoleMap   map[string]apikey.Role // nil: a role named owner, admin or member is taken as is; anything else is member
}

// JWTVerifier verifies login tokens. It is safe for concurrent use.
type JWTVerifier struct {
	parser *jwt.Parser
	secret []byte     // HS256 mode
	jwks   *jwksCache // JWKS mode
	org    *orgClaims // identity-provider mode; nil: off
	logger *slog.Logger
}

// NewJWTVerifier returns a verifier for cfg. It returns an error for a bad
// config: a secret shorter than 32 bytes, both or neither of Secret and
// JWKSURL set, or a JWKS URL that is not an absolute http(s) URL. In JWKS
// mode no request is made here: the key set is fetched on first use, so an
// identity provider that is down does not prevent construction.
func NewJWTVerifier(cfg JWTConfig) (*JWTVerifier, error) {
	return newJWTVerifier(cfg, jwksDefaultTuning())
}

func newJWTVerifier(cfg JWTConfig, tuning jwksTuning) (*JWTVerifier, error) {
	hasSecret, hasURL := len(cfg.Secret) > 0, cfg.JWKSURL != ""
	if hasSecret == hasURL {
		return nil, errJWTConfigExactlyOne
	}

	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}

	v := &JWTVerifier{logger: logger}
	if cfg.OrgClaim != nil {
		v.org = &orgClaims{id: cfg.OrgClaim, role: cfg.OrgRoleClaim, roles: cfg.OrgRoleMap}
	}
	var methods []string
	if hasSecret {
		if err := tokensecret.Check(cfg.Secret); err != nil {
			return nil, err
		}
		v.secret = append([]byte(nil), cfg.Secret...)
		methods = []string{jwt.SigningMethodHS256.Alg()}
	} else {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			// The URL is not echoed: it may carry credentials.
			return nil, errors.New("auth: JWKS URL must be an absolute http or https URL")
		}
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{}
		}
		v.jwks = newJWKSCache(cfg.JWKSURL, client, now, logger, tuning)
		methods = jwksAlgorithms()
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithLeeway(jwtLeeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Verify returns the principal of the token: its subject as the user id
// and, in identity-provider mode, the organisation it acts for (Org, nil
// when its claims name none usable). Or an *apperr.Error with code
// INVALID_OR_EXPIRED_TOKEN; or SERVER_BUSY when the token needs the JWK set
// (an unknown kid) and the identity provider cannot be reached, so that an
// outage is not counted as a failed authentication.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (apikey.Principal, error) {
	// Cheap structural checks first, so that hostile input never reaches
	// the decoder: at most 8 KiB and exactly three segments.
	if token == "" || len(token) > jwtMaxTokenBytes || strings.Count(token, ".") != 2 {
		return apikey.Principal{}, v.reject(ctx, errJWTMalformed)
	}

	// MapClaims rather than a struct: encoding/json matches struct fields
	// case-insensitively, so {"sub":…,"SUB":…} could pick the wrong claim.
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	})
	if err != nil {
		return apikey.Principal{}, v.reject(ctx, err)
	}

	sub, err := claims.GetSubject()
	if err != nil || !jwtValidID(sub) {
		return apikey.Principal{}, v.reject(ctx, errJWTBadSubject)
	}
	p := apikey.Principal{UserID: sub, Method: apikey.MethodJWT}
	if v.org != nil {
		p.Org = v.org.read(claims)
	}
	return p, nil
}

// keyFor is the jwt.Keyfunc. The parser has already checked that the alg
// header is one of the configured algorithms; keyFor additionally binds the
// algorithm to the key. Headers such as jku, x5u and jwk are never read.
func (v *JWTVerifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 §4.1.11: extensions we do not understand must be refused.
		return nil, errJWTCritHeader
	}
	alg := t.Method.Alg()
	if v.jwks == nil {
		if alg != jwt.SigningMethodHS256.Alg() {
			return nil, errJWTAlgNotAllowed
		}
		return v.secret, nil
	}

	kid := ""
	if raw, ok := t.Header["kid"]; ok {
		s, ok := raw.(string)
		if !ok {
			return nil, errJWTMalformed
		}
		kid = s
	}
	return v.jwks.lookup(ctx, kid, alg)
}

// reject logs the category of cause at Debug (never the token) and returns
// the one client-facing error, with cause attached for tokenOutcome:
// SERVER_BUSY when the key set could not be had, else
// INVALID_OR_EXPIRED_TOKEN.
func (v *JWTVerifier) reject(ctx context.Context, cause error) error {
	v.logger.LogAttrs(ctx, slog.LevelDebug, "login token rejected",
		slog.String("reason", jwtFailureReason(cause)))
	if errors.Is(cause, errJWKSUnavailable) {
		return apperr.Wrap(apperr.ServerBusy, jwtUnavailableMessage, cause)
	}
	return apperr.Wrap(apperr.InvalidToken, jwtInvalidMessage, cause)
}

// tokenOutcome tells why a login token was refused, for metrics.
func tokenOutcome(err error) apikey.Outcome {
	switch {
	case errors.Is(err, errJWTMalformed), errors.Is(err, jwt.ErrTokenMalformed):
		return apikey.OutcomeMalformed
	case errors.Is(err, jwt.ErrTokenExpired):
		return apikey.OutcomeExpired
	case errors.Is(err, errJWKSUnavailable):
		return apikey.OutcomeError
	case apperr.CodeOf(err) == apperr.InvalidToken:
		return apikey.OutcomeInvalid
	default:
		return apikey.OutcomeError
	}
}

// jwtFailureReason maps an error to a short, token-free category.
func jwtFailureReason(err error) string {
	switch {
	case errors.Is(err, errJWTMalformed), errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, errJWTCritHeader):
		return "crit_header"
	case errors.Is(err, errJWTAlgNotAllowed):
		return "algorithm_not_allowed"
	case errors.Is(err, errJWKSUnknownKey):
		return "unknown_key"
	case errors.Is(err, errJWKSUnavailable):
		return "key_set_unavailable"
	case errors.Is(err, errJWTBadSubject):
		return "bad_subject"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// Also covers an alg outside WithValidMethods (e.g. none, HS256 in JWKS mode).
		return "bad_signature_or_algorithm"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not_yet_valid"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "issued_in_future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing_claim"
	case errors.Is(err, jwt.ErrInvalidType):
		return "bad_claim_type"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable"
	default:
		return "other"
	}
}

// jwtValidID reports whether id, a token's `sub` or organisation, is usable
// as a user or organisation id: non-empty, at most 255 bytes, free of
// control characters (which no real id contains and which some stores,
// e.g. a NUL in PostgreSQL text, reject; CR and LF would also break the
// X-Auth-User-Id and X-Auth-Org-Id headers) and of leading or trailing
// white space (which a proxy reading those headers trims, so that " alice"
// would pass as "alice").
func jwtValidID(id string) bool {
	if id == "" || len(id) > jwtMaxIDBytes || strings.TrimSpace(id) != id {
		return false
	}
	return !strings.ContainsFunc(id, unicode.IsControl)
}

// MintToken signs an HS256 token for sub with the given ttl, iat=now, exp=now+ttl, and iss/aud when non-empty. Used by the `apikeyd token` command and by tests.
func MintToken(secret []byte, sub string, ttl time.Duration, issuer, audience string) (string, error) {
	return MintTokenAt(secret, sub, time.Now(), ttl, issuer, audience)
}

// MintTokenAt is MintToken issued at iat rather than now, so the caller
// knows the token's exp: iat+ttl, truncated to the second like every
// NumericDate. Used by the built-in accounts' login.
func MintTokenAt(secret []byte, sub string, iat time.Time, ttl time.Duration, issuer, audience string) (string, error) {
	if err := tokensecret.Check(secret); err != nil {
		return "", err
	}
	if !jwtValidID(sub) {
		return "", errors.New("auth: subject must be 1 to 255 bytes without control characters")
	}
	if ttl <= 0 {
		return "", errors.New("auth: token ttl must be positive")
	}
	claims := jwt.RegisteredClaims{
		Subject:   sub,
		Issuer:    issuer,
		IssuedAt:  jwt.NewNumericDate(iat),
		ExpiresAt: jwt.NewNumericDate(iat.Add(ttl)),
	}
	if audience != "" {
		claims.Audience = jwt.ClaimStrings{audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
