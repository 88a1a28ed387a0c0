// Package apperr defines the one coded error type that every layer of apikeyd
// returns and every edge (REST, GraphQL) translates.
package apperr

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Clients match on it.
type Code string

// The error codes of the public contract.
const (
	MissingAuth             Code = "MISSING_AUTH"
	InvalidToken            Code = "INVALID_OR_EXPIRED_TOKEN"
	JWTRequired             Code = "JWT_REQUIRED"
	InsufficientScope       Code = "INSUFFICIENT_SCOPE"
	InsufficientRole        Code = "INSUFFICIENT_ROLE"
	NotFound                Code = "NOT_FOUND"
	MethodNotAllowed        Code = "METHOD_NOT_ALLOWED"
	InvalidRequest          Code = "INVALID_REQUEST"
	PayloadTooLarge         Code = "PAYLOAD_TOO_LARGE"
	UnsupportedMediaType    Code = "UNSUPPORTED_MEDIA_TYPE"
	KeyLimitReached         Code = "KEY_LIMIT_REACHED"
	KeyAlreadyRolled        Code = "KEY_ALREADY_ROLLED"
	KeyExpired              Code = "KEY_EXPIRED"
	EmailTaken              Code = "EMAIL_TAKEN"
	LastOwner               Code = "LAST_OWNER"
	InvitationEmailMismatch Code = "INVITATION_EMAIL_MISMATCH"
	InvalidCredentials      Code = "INVALID_CREDENTIALS"
	RateLimited             Code = "RATE_LIMITED"
	KeyDisabled             Code = "KEY_DISABLED"
	IPNotAllowed            Code = "IP_NOT_ALLOWED"
	UsageExceeded           Code = "USAGE_EXCEEDED"
	InvalidSignature        Code = "INVALID_SIGNATURE"
	ServerBusy              Code = "SERVER_BUSY"
	Internal                Code = "INTERNAL"
)

// Error is an error with a code and a message that is safe to show a client.
// The message never contains a secret or an internal detail.
type Error struct {
	Code    Code
	Message string
	// Cause is the underlying failure, for logs only; clients see Message.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.Cause.Error()
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Wrap returns an *Error with the given code and message caused by cause.
func Wrap(code Code, message string, cause error) *Error {
	return &Error{Code: code, Message: message, Cause: cause}
}

// New returns an *Error with the given code and message.
func New(code Code, message string) *Error { return &Error{Code: code, Message: message} }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the first *Error in err's chain, or Internal for
// any other non-nil error, or "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MessageOf returns the client-safe message of err: the message of an *Error,
// or "internal error" for anything else.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
