package account

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// DefaultSessionTTL is how long a login token lasts unless configured.
const DefaultSessionTTL = time.Hour

// MintFunc signs a login token for userID, issued at iat and valid for ttl
// (exp = iat + ttl).
type MintFunc func(userID string, iat time.Time, ttl time.Duration) (string, error)

// Config holds the Service's settings.
type Config struct {
	// Mint signs login tokens. Required.
	Mint MintFunc
	// SessionTTL is the lifetime of a login token, in whole seconds;
	// DefaultSessionTTL when zero.
	SessionTTL time.Duration
	// Params are the argon2id costs of new hashes; DefaultParams when zero.
	// Existing hashes are verified with the costs recorded in them.
	Params Params
	Now    func() time.Time
	// Log receives the failures to record a failed login, which are
	// written in the background; slog.Default() when nil.
	Log *slog.Logger
}

// Service owns every rule about accounts: what a valid email and password
// are, how passwords are hashed and checked, and what a login returns.
type Service struct {
	store  Store
	mint   MintFunc
	ttl    time.Duration
	params Params
	now    func() time.Time
	log    *slog.Logger

	// dummy is the hash of a random password, verified when a login names no
	// account, so that an unknown email costs what a wrong password costs.
	dummy string
	// slots bounds the argon2id computations running at once: each holds
	// params.Memory KiB, and more of them than cores only queue for CPU.
	slots chan struct{}
	// verify is VerifyPassword; tests observe its calls through it.
	verify func(encoded, password string) (bool, error)
	// background counts the failed logins being recorded.
	background sync.WaitGroup
}

// NewService returns a Service over store. It hashes once, for the dummy
// hash, so it takes as long as one login.
func NewService(store Store, cfg Config) *Service {
	if cfg.Mint == nil {
		panic("account: Config.Mint is required")
	}
	ttl := cfg.SessionTTL.Truncate(time.Second)
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{
		log:    cfg.Log,
		store:  store,
		mint:   cfg.Mint,
		ttl:    ttl,
		params: cfg.Params,
		now:    cfg.Now,
		dummy:  HashPassword(rand.Text(), cfg.Params),
		slots:  make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		verify: VerifyPassword,
	}
}

// SessionTTL returns the lifetime of the login tokens Login issues.
func (s *Service) SessionTTL() time.Duration { return s.ttl }

var (
	errInvalidCredentials = apperr.New(apperr.InvalidCredentials, "invalid email or password")
	errEmailTaken         = apperr.New(apperr.EmailTaken, "an account with this email already exists")
)

// Register creates an account, active at once (there is no mail to confirm).
// Returns INVALID_REQUEST for a malformed email or a password under
// MinPasswordChars characters or over MaxPasswordBytes bytes, EMAIL_TAKEN
// when an account has the same email in any case, SERVER_BUSY when the
// database cannot be reached.
func (s *Service) Register(ctx context.Context, email, password string) (User, error) {
	trimmed, normalized, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	if err := checkPassword(password); err != nil {
		return User{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return User{}, err
	}
	if err := s.acquire(ctx); err != nil {
		return User{}, err
	}
	hash := HashPassword(password, s.params)
	s.release()
	u := User{ID: id.String(), Email: trimmed, CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
	ev := audit.New(ctx, u.ID, audit.UserRegistered, u.CreatedAt)
	err = s.store.CreateUser(ctx, StoredUser{User: u, EmailNormalized: normalized, PasswordHash: hash}, ev)
	if apperr.CodeOf(err) == apperr.EmailTaken {
		return User{}, errEmailTaken
	}
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// Login checks an email and password and returns a session: the user and a
// login token for them.
// Returns INVALID_CREDENTIALS when no account has the email or the password
// is wrong, never saying which, and taking as long either way (an unknown
// email is checked against a dummy hash); SERVER_BUSY when the database
// cannot be reached. Rate limiting is the caller's: see the REST adapter.
func (s *Service) Login(ctx context.Context, email, password string) (Session, error) {
	u, found, err := s.lookup(ctx, email, password)
	if err != nil {
		return Session{}, err
	}
	encoded := s.dummy
	if found {
		encoded = u.PasswordHash
	}
	if err := s.acquire(ctx); err != nil {
		return Session{}, err
	}
	ok, err := s.verify(encoded, password)
	s.release()
	if err != nil {
		return Session{}, apperr.Wrap(apperr.Internal, "internal error", fmt.Errorf("account: password hash of user %s: %w", u.ID, err))
	}
	if !found {
		return Session{}, errInvalidCredentials
	}
	if !ok {
		s.recordFailedLogin(ctx, u.ID)
		return Session{}, errInvalidCredentials
	}
	iat := s.now().UTC().Truncate(time.Second)
	tok, err := s.mint(u.ID, iat, s.ttl)
	if err != nil {
		return Session{}, err
	}
	if err := s.store.AddEvent(ctx, audit.New(ctx, u.ID, audit.UserLogin, s.now())); err != nil {
		return Session{}, err
	}
	return Session{User: u.User, AccessToken: tok, TokenType: "bearer", ExpiresIn: s.ttl, ExpiresAt: iat.Add(s.ttl)}, nil
}

// recordFailedLogin records a failed login to userID's account. It is
// written in the background: the answer to a wrong password must take as
// long as the answer to an unknown email, which records nothing.
func (s *Service) recordFailedLogin(ctx context.Context, userID string) {
	ev := audit.New(ctx, userID, audit.UserLoginFailed, s.now())
	s.background.Go(func() {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := s.store.AddEvent(bctx, ev); err != nil {
			s.log.Warn("recording a failed login failed", "user_id", userID, "err", err)
		}
	})
}

// Wait waits for the failed logins being recorded in the background.
func (s *Service) Wait() { s.background.Wait() }

// lookup finds the account a login names. found is false, with no error,
// when there is none, also when the email or password could never have been
// registered.
func (s *Service) lookup(ctx context.Context, email, password string) (u StoredUser, found bool, err error) {
	_, normalized, err := NormalizeEmail(email)
	if err != nil || len(password) > MaxPasswordBytes {
		return StoredUser{}, false, nil
	}
	u, err = s.store.FindUserByEmail(ctx, normalized)
	switch apperr.CodeOf(err) {
	case "":
		return u, true, nil
	case apperr.NotFound:
		return StoredUser{}, false, nil
	default:
		return StoredUser{}, false, err
	}
}

// acquire takes a hashing slot, waiting while all are busy.
func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return apperr.Wrap(apperr.ServerBusy, "the server is busy; try again later", ctx.Err())
	}
}

func (s *Service) release() { <-s.slots }
