package rings

import "errors"

// ErrClosed is returned by calls on a closed Socket or Steer.
var ErrClosed = errors.New("rings: closed")

// ErrNotSupported is returned by Open and LoadSteer where AF_XDP and XDP
// don't exist (any OS but Linux).
var ErrNotSupported = errors.New("rings: AF_XDP and XDP need Linux")
