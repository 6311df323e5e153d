package evidence

import (
	"crypto/sha1"
	"encoding/hex"
)

// uuid is an RFC 9562 UUID.
type uuid [16]byte

// uuidNamespaceURL is RFC 9562's namespace for names that are URLs.
var uuidNamespaceURL = uuid{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// uuidV5 is the name-based (SHA-1) UUID of name in namespace: the same
// name always gives the same UUID, which a reproducible SBOM's serial
// number needs (CycloneDX asks for an RFC 4122 UUID, not a random one).
func uuidV5(namespace uuid, name string) uuid {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(name))
	var u uuid
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u
}

func (u uuid) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
