package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"selfserve/connectors"
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// checkEncoding reads r to its end and reports, naming the line, the first
// sign that it is not UTF-8 text: a UTF-16 byte order mark or NUL bytes, or a
// byte sequence that is not UTF-8 (Latin-1, Windows-1252). It returns the
// length of a UTF-8 byte order mark to skip (0 or 3). It stops with an error
// past maxBytes. Memory use is one buffer, whatever the file's size.
func checkEncoding(ctx context.Context, r io.Reader, maxBytes int64) (bomLen int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, utf8BOM):
		bomLen = len(utf8BOM)
		_, _ = br.Discard(bomLen)
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}):
		return 0, fmt.Errorf("%w: the file is UTF-16 (little-endian, as Excel's \"Unicode Text\" and Windows PowerShell write it); save it as UTF-8", connectors.ErrInvalidConfig)
	case bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return 0, fmt.Errorf("%w: the file is UTF-16 (big-endian); save it as UTF-8", connectors.ErrInvalidConfig)
	case len(head) >= 2 && (head[0] == 0) != (head[1] == 0):
		return 0, fmt.Errorf("%w: line 1 starts with NUL bytes: the file looks like UTF-16 without a byte order mark; save it as UTF-8", connectors.ErrInvalidConfig)
	}

	buf := make([]byte, 64<<10)
	carry := 0             // bytes of an incomplete character kept for the next read
	line, col := 1, 1      // position of the start of the next chunk
	total := int64(bomLen) // bytes read so far
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, rerr := br.Read(buf[carry:])
		total += int64(n)
		if total > maxBytes {
			return 0, fmt.Errorf("%w: the file is larger than max_bytes (%d); raise max_bytes if the file is right", connectors.ErrInvalidConfig, maxBytes)
		}
		data := buf[:carry+n]
		eof := errors.Is(rerr, io.EOF)
		end := len(data)
		if !eof {
			end = completeRunes(data)
		}
		chunk := data[:end]
		if i := firstNonText(chunk); i >= 0 {
			l, c := advance(line, col, chunk[:i])
			return 0, encodingError(l, c, chunk[i:])
		}
		line, col = advance(line, col, chunk)
		carry = copy(buf, data[end:])
		if eof {
			return bomLen, nil
		}
		if rerr != nil {
			return 0, fmt.Errorf("%w: %w", connectors.ErrUnavailable, rerr)
		}
	}
}

// completeRunes returns the length of data without an incomplete UTF-8
// sequence at its end.
func completeRunes(data []byte) int {
	for k := len(data) - 1; k >= 0 && k >= len(data)-utf8.UTFMax; k-- {
		if utf8.RuneStart(data[k]) {
			if !utf8.FullRune(data[k:]) {
				return k
			}
			break
		}
	}
	return len(data)
}

// firstNonText returns the index of the first NUL byte or invalid UTF-8
// sequence in b, or -1.
func firstNonText(b []byte) int {
	if utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 {
		return -1
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c == 0 {
			return i
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

// advance moves a line and column (in characters) over b.
func advance(line, col int, b []byte) (int, int) {
	if nl := bytes.Count(b, []byte{'\n'}); nl > 0 {
		line += nl
		b = b[bytes.LastIndexByte(b, '\n')+1:]
		col = 1
	}
	return line, col + utf8.RuneCount(b)
}

func encodingError(line, col int, rest []byte) error {
	c := rest[0]
	if c == 0 {
		return fmt.Errorf("%w: line %d, column %d: a NUL byte; the file is binary or UTF-16, save it as UTF-8", connectors.ErrInvalidConfig, line, col)
	}
	guess := ""
	if c >= 0xA0 {
		guess = fmt.Sprintf(" (%q in Latin-1)", string(rune(c)))
	}
	return fmt.Errorf("%w: line %d, column %d: byte 0x%02X%s is not UTF-8; the file looks like Latin-1 or Windows-1252 (Excel's \"CSV (Comma delimited)\"): save it as UTF-8 (Excel: \"CSV UTF-8\")",
		connectors.ErrInvalidConfig, line, col, c, guess)
}
