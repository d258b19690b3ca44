package passwords

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
)

//go:embed data/passwords.txt.gz
var blocklistGz []byte

// blocklist is the list, as sorted hashes of its lower-cased entries.
type blocklist struct {
	seed   maphash.Seed
	hashes []uint64
	// start[p] is the position of the first hash whose top 16 bits are p
	// or more: a lookup searches only hashes[start[p]:start[p+1]], about
	// seven entries.
	start []uint32
}

const indexBits = 16

// loadBlocklist decompresses the embedded list once per process.
var loadBlocklist = sync.OnceValue(func() *blocklist {
	bl, err := parseBlocklist(blocklistGz)
	if err != nil {
		// The file is compiled in: a broken one is a build defect.
		panic(fmt.Sprintf("passwords: the embedded blocklist is unreadable: %v", err))
	}
	return bl
})

// parseBlocklist reads a gzip-compressed list, one password a line.
func parseBlocklist(gz []byte) (*blocklist, error) {
	bl := &blocklist{seed: maphash.MakeSeed(), hashes: make([]uint64, 0, 440_000)}
	err := eachEntry(gz, func(entry string) {
		bl.hashes = append(bl.hashes, maphash.String(bl.seed, entry))
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(bl.hashes)
	bl.hashes = slices.Compact(bl.hashes)
	bl.start = make([]uint32, 1<<indexBits+1)
	i := 0
	for p := range bl.start {
		for i < len(bl.hashes) && bl.hashes[i]>>(64-indexBits) < uint64(p) {
			i++
		}
		bl.start[p] = uint32(i)
	}
	return bl, nil
}

// eachEntry calls fn with each non-empty line of a gzip-compressed list,
// lower-cased, without its line ending.
func eachEntry(gz []byte, fn func(string)) error {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if line := strings.TrimSuffix(sc.Text(), "\r"); line != "" {
			fn(strings.ToLower(line))
		}
	}
	return sc.Err()
}

func (bl *blocklist) contains(password string) bool {
	h := maphash.String(bl.seed, strings.ToLower(password))
	p := h >> (64 - indexBits)
	_, found := slices.BinarySearch(bl.hashes[bl.start[p]:bl.start[p+1]], h)
	return found
}

// Blocked reports whether password, ignoring case, is on the blocklist of
// common and breached passwords. The first call loads the list.
func Blocked(password string) bool {
	return loadBlocklist().contains(password)
}

// BlocklistSize is the number of distinct (lower-cased) entries of the
// blocklist. The first call loads the list.
func BlocklistSize() int {
	return len(loadBlocklist().hashes)
}

// BlocklistEntries returns the lower-cased entries of the embedded list, in
// file order with repeats (for benchmarks comparing the lookup with a plain
// map of the same entries).
func BlocklistEntries() ([]string, error) {
	var out []string
	err := eachEntry(blocklistGz, func(entry string) { out = append(out, entry) })
	return out, err
}
