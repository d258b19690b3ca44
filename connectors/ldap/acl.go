package ldap

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// This file evaluates an object's DACL (MS-DTYP 2.4.5, 2.5.3.2) for one
// right, as the DC's access check does for a token of SIDs: the ACEs in
// order, the first allow or deny of the right for a SID of the token
// decides. It answers the one question "test connection" asks, whether the
// bind account holds the Reset Password right on a user, which no
// constructed attribute reveals (allowedAttributesEffective covers property
// writes, not extended rights).

// Access mask bits of directory objects (MS-ADTS 5.1.3.2).
const (
	rightControlAccess = 0x00000100 // ADS_RIGHT_DS_CONTROL_ACCESS
	rightGenericAll    = 0x10000000
)

// ACE types and flags (MS-DTYP 2.4.4.1).
const (
	aceAllowed       = 0x00
	aceDenied        = 0x01
	aceAllowedObject = 0x05
	aceDeniedObject  = 0x06

	aceInheritOnly = 0x08

	aceObjectTypePresent          = 0x1
	aceInheritedObjectTypePresent = 0x2
)

// guidResetPassword is the rightsGuid of the User-Force-Change-Password
// extended right, "Reset Password" (00299570-246d-11d0-a768-00aa006e0529),
// in its binary (mixed-endian) form.
var guidResetPassword = mustGUIDBytes("00299570-246d-11d0-a768-00aa006e0529")

// errBadSD: the security descriptor is not one this parser understands.
var errBadSD = errors.New("malformed security descriptor")

// ace is one access control entry of a DACL.
type ace struct {
	kind       byte
	flags      byte
	mask       uint32
	objectType []byte // nil: the ACE covers every object type
	sid        []byte
}

// parseDACL returns the DACL's ACEs of a self-relative security descriptor
// (as nTSecurityDescriptor is read with the SD flags control). A
// descriptor without a DACL returns no ACEs and ok false.
func parseDACL(sd []byte) (aces []ace, ok bool, err error) {
	if len(sd) < 20 || sd[0] != 1 {
		return nil, false, errBadSD
	}
	const daclPresent = 0x0004
	control := binary.LittleEndian.Uint16(sd[2:])
	off := int(binary.LittleEndian.Uint32(sd[16:]))
	if control&daclPresent == 0 || off == 0 {
		return nil, false, nil
	}
	if off+8 > len(sd) {
		return nil, false, errBadSD
	}
	count := int(binary.LittleEndian.Uint16(sd[off+4:]))
	p := off + 8
	for range count {
		if p+4 > len(sd) {
			return nil, false, errBadSD
		}
		size := int(binary.LittleEndian.Uint16(sd[p+2:]))
		if size < 8 || p+size > len(sd) {
			return nil, false, errBadSD
		}
		body := sd[p+4 : p+size]
		a := ace{kind: sd[p], flags: sd[p+1], mask: binary.LittleEndian.Uint32(body)}
		rest := body[4:]
		switch a.kind {
		case aceAllowed, aceDenied:
			a.sid = rest
		case aceAllowedObject, aceDeniedObject:
			if len(rest) < 4 {
				return nil, false, errBadSD
			}
			objFlags := binary.LittleEndian.Uint32(rest)
			rest = rest[4:]
			if objFlags&aceObjectTypePresent != 0 {
				if len(rest) < 16 {
					return nil, false, errBadSD
				}
				a.objectType, rest = rest[:16], rest[16:]
			}
			if objFlags&aceInheritedObjectTypePresent != 0 {
				if len(rest) < 16 {
					return nil, false, errBadSD
				}
				rest = rest[16:]
			}
			a.sid = rest
		default:
			p += size
			continue // audit, callback and other ACEs grant nothing here
		}
		if a.sid = sidPrefix(a.sid); a.sid == nil {
			return nil, false, errBadSD
		}
		aces = append(aces, a)
		p += size
	}
	return aces, true, nil
}

// sidPrefix returns the SID at the start of b (ACEs may pad after it), or
// nil when b does not start with one.
func sidPrefix(b []byte) []byte {
	if len(b) < 8 {
		return nil
	}
	n := 8 + 4*int(b[1])
	if b[0] != 1 || len(b) < n {
		return nil
	}
	return b[:n]
}

// grantsControlAccess reports whether the DACL grants a token holding the
// given SIDs the control access right rightGUID (an extended right such as
// Reset Password): the first ACE of the token that allows or denies it
// decides; none means denied. Inherit-only ACEs do not apply to the object
// itself.
func grantsControlAccess(aces []ace, token [][]byte, rightGUID []byte) bool {
	for _, a := range aces {
		if a.flags&aceInheritOnly != 0 || a.mask&(rightControlAccess|rightGenericAll) == 0 {
			continue
		}
		if a.objectType != nil && !bytes.Equal(a.objectType, rightGUID) {
			continue
		}
		if !containsSID(token, a.sid) {
			continue
		}
		switch a.kind {
		case aceAllowed, aceAllowedObject:
			return true
		case aceDenied, aceDeniedObject:
			return false
		}
	}
	return false
}

func containsSID(token [][]byte, sid []byte) bool {
	for _, t := range token {
		if bytes.Equal(t, sid) {
			return true
		}
	}
	return false
}

// Well-known SIDs every authenticated bind holds.
var (
	sidEveryone           = []byte{1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}  // S-1-1-0
	sidAuthenticatedUsers = []byte{1, 1, 0, 0, 0, 0, 0, 5, 11, 0, 0, 0} // S-1-5-11
)
