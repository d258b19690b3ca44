// Package file is the connector of kind "file": it imports local accounts
// from a CSV or JSON export (machine accounts reported by an agent, a script's
// output, the demo's sample data).
//
// The file is read again on every listing and streamed page by page, so a
// large file never sits in memory. Each listing first reads the whole file
// once to check it (encoding, then structure), so that a broken file yields
// no page at all: a run applies all of a file or nothing of it. A row the
// connector cannot turn into a user becomes an InvalidRecord ("row 7": what
// is wrong with which column, and the row's external id when the row is
// whole enough to tell it) and the rest goes on; a file it cannot read at all
// (missing username column, not UTF-8, broken quoting or JSON syntax, cut
// short, more than max_rows rows) fails the listing, before any page, with an
// error naming the row and line.
//
// # Columns
//
// The CSV has a header row; columns come in any order, header names are
// trimmed and case-insensitive (spaces and hyphens count as underscores). An
// unknown column that is a likely misspelling of a known one ("emial",
// "mobil") fails the listing naming both; other unknown columns (department,
// office) are ignored. The delimiter is a comma, or a semicolon or tab
// when the header row has no comma. The JSON form is an array of objects with
// the same keys; booleans may be JSON booleans or strings, text may be JSON
// strings or numbers, null counts as empty.
//
//	username              required; the external id unless external_id is given
//	external_id           stable id of the account (e.g. a SID); default: username
//	upn                   user principal name
//	first_name, last_name, display_name
//	email, mobile         kept raw: the sync engine normalises them
//	enabled               true/false (also yes/no, 1/0); default true
//	locked_out            default false
//	locked_out_at         RFC 3339; empty while locked out: the engine stamps it
//	must_change_password  default false
//	password_last_set     RFC 3339
//	password_expires_at   RFC 3339; empty means the password never expires
//
// Times are RFC 3339 with an offset ("2026-12-01T09:00:00Z",
// "2026-12-01 10:00:00+01:00") and are converted to UTC.
//
// Rows are numbered as a spreadsheet shows them: the CSV header is row 1,
// the first account row 2. JSON objects are numbered from 1 ("object 3").
// Each page's Resume is the number of the last row it holds, so an
// interrupted run continues after it. The connector has no delta: every run
// reads the whole file.
package file

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"selfserve/connectors"
)

// Defaults and limits of Config.
const (
	DefaultPageSize = 500
	MaxPageSize     = 10000
	DefaultMaxRows  = 1_000_000
	DefaultMaxBytes = 1 << 30
	// MaxMaxRows bounds max_rows (row numbers are kept in 32 bits).
	MaxMaxRows = 100_000_000
)

// Config is the file connector's configuration, decoded from a connection's
// settings (it has no secrets). In an apply file:
//
//	connections:
//	  - name: contoso-local
//	    kind: file
//	    enable_self_serve: false
//	    settings:
//	      path: examples/contoso-local.csv   # required
//	      format: csv                        # csv | json; default from the extension
//	      page_size: 500
//	      max_rows: 1000000
//	      max_bytes: 1073741824
type Config struct {
	// Path is the file to import. A relative path is read from the working
	// directory of the process. Required.
	Path string `json:"path" connector:"file" help:"Name of a CSV or JSON export of the accounts in the tenant's import folder."`
	// Format is "csv" or "json". Default: from Path's extension (.csv, .json),
	// required when the extension says neither.
	Format string `json:"format,omitempty" help:"csv or json. Empty: taken from the file's extension."`
	// PageSize is how many rows each page holds, 1..10000. Default 500.
	PageSize int `json:"page_size,omitempty" help:"Rows per page, 1 to 10000. Default 500."`
	// MaxRows is the most account rows the file may hold; a larger file fails
	// the listing rather than importing part of it. Default 1000000.
	MaxRows int `json:"max_rows,omitempty" help:"Most account rows the file may hold; a larger file fails the import. Default 1000000."`
	// MaxBytes is the largest file size accepted, in bytes. Default 1 GiB.
	MaxBytes int64 `json:"max_bytes,omitempty" help:"Largest file size accepted, in bytes. Default 1 GiB."`
}

// Open checks the settings (all problems at once, wrapping
// connectors.ErrInvalidConfig), fills in the defaults and checks that the
// file exists (connectors.ErrNotFound when it does not). The file itself is
// opened by each listing.
func (c *Config) Open(env connectors.Env) (connectors.Source, error) {
	id, logger := env.ID, env.Logger
	var problems []string
	if strings.TrimSpace(c.Path) == "" {
		problems = append(problems, `path is required: the CSV or JSON file to import, e.g. path: exports/accounts.csv`)
	}
	format := strings.ToLower(strings.TrimSpace(c.Format))
	switch format {
	case "csv", "json":
	case "":
		switch ext := strings.ToLower(filepath.Ext(c.Path)); ext {
		case ".csv":
			format = "csv"
		case ".json":
			format = "json"
		default:
			if c.Path != "" {
				problems = append(problems, fmt.Sprintf("format is required: the extension %q of %s says neither .csv nor .json; set format: csv or format: json", ext, c.Path))
			}
		}
	default:
		problems = append(problems, fmt.Sprintf("format %q is not supported; use csv or json", c.Format))
	}
	if c.PageSize < 0 || c.PageSize > MaxPageSize {
		problems = append(problems, fmt.Sprintf("page_size %d is out of range 1..%d", c.PageSize, MaxPageSize))
	}
	if c.MaxRows < 0 || c.MaxRows > MaxMaxRows {
		problems = append(problems, fmt.Sprintf("max_rows %d is out of range 1..%d", c.MaxRows, MaxMaxRows))
	}
	if c.MaxBytes < 0 {
		problems = append(problems, fmt.Sprintf("max_bytes %d is negative", c.MaxBytes))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", connectors.ErrInvalidConfig, strings.Join(problems, "; "))
	}
	s := &source{
		id:       id,
		path:     c.Path,
		format:   format,
		pageSize: cmp.Or(c.PageSize, DefaultPageSize),
		maxRows:  cmp.Or(c.MaxRows, DefaultMaxRows),
		maxBytes: cmp.Or(c.MaxBytes, DefaultMaxBytes),
		logger:   logger,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if _, err := s.stat(); err != nil {
		return nil, err
	}
	return s, nil
}

var (
	_ connectors.UserSource = (*source)(nil)
	_ connectors.Pinger     = (*source)(nil)
)

// source is an opened file connection.
type source struct {
	id       string
	path     string
	format   string
	pageSize int
	maxRows  int
	maxBytes int64
	logger   *slog.Logger
}

// Close implements connectors.Source. Each listing opens and closes the file
// itself, so there is nothing to release.
func (s *source) Close() error { return nil }

// Ping implements connectors.Pinger: the file exists, is UTF-8, has the
// required username column (or key) and reads to its end.
func (s *source) Ping(ctx context.Context) error {
	_, closeFile, err := s.openRows(ctx)
	if err != nil {
		return err
	}
	closeFile()
	return nil
}

// stat checks that the file exists, is a regular file and is not too big.
func (s *source) stat() (fs.FileInfo, error) {
	info, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		wd, _ := os.Getwd()
		where := ""
		if !filepath.IsAbs(s.path) {
			where = fmt.Sprintf(" (relative paths are read from the working directory %s)", wd)
		}
		return nil, fmt.Errorf("%w: file %s does not exist%s", connectors.ErrNotFound, s.path, where)
	case err != nil:
		return nil, fmt.Errorf("%w: cannot read file %s: %w", connectors.ErrInvalidConfig, s.path, err)
	case info.IsDir():
		return nil, fmt.Errorf("%w: %s is a directory; path must name a CSV or JSON file", connectors.ErrInvalidConfig, s.path)
	case info.Size() > s.maxBytes:
		return nil, fmt.Errorf("%w: %s is %d bytes, more than max_bytes (%d); raise max_bytes if the file is right", connectors.ErrInvalidConfig, s.path, info.Size(), s.maxBytes)
	}
	return info, nil
}

// openRows opens the file, checks it from start to end (its encoding, then
// its structure), and returns a reader of its rows positioned after the
// header (or the opening bracket). closeFile releases the file. The whole
// file is checked before a row is yielded so that a file in the wrong
// encoding, or one that breaks part way (an unclosed quote, JSON cut short
// by an exporter still writing it, too many rows), imports nothing rather
// than half. All passes read the bytes the file had when it was opened.
func (s *source) openRows(ctx context.Context) (rows rowReader, closeFile func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", s.path, err)
	}
	if _, err := s.stat(); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: cannot open %s: %w", connectors.ErrInvalidConfig, s.path, err)
	}
	closeFile = func() { _ = f.Close() }
	fail := func(err error) (rowReader, func(), error) {
		closeFile()
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("%w: %s: %w", connectors.ErrUnavailable, s.path, err))
	}
	size := info.Size()
	bomLen, err := checkEncoding(ctx, io.NewSectionReader(f, 0, size), s.maxBytes)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", s.path, err))
	}
	body := func() io.Reader { return io.NewSectionReader(f, int64(bomLen), size-int64(bomLen)) }
	if err := s.checkRows(ctx, body(), bomLen); err != nil {
		return fail(err)
	}
	if rows, err = s.newRows(body(), bomLen); err != nil {
		return fail(err)
	}
	return rows, closeFile, nil
}

// newRows returns the reader of the file's format over r, the file after
// its byte order mark.
func (s *source) newRows(r io.Reader, bomLen int) (rowReader, error) {
	if s.format == "json" {
		return newJSONRows(r, s.path, bomLen)
	}
	return newCSVRows(r, s.path)
}

// checkRows reads every row of r once and returns the first error that would
// end a listing: broken quoting or JSON syntax (naming the row and line), a
// truncated file, more than max_rows rows. Problems of single rows are left
// to the listing, which reports them as invalid records.
func (s *source) checkRows(ctx context.Context, r io.Reader, bomLen int) error {
	rows, err := s.newRows(r, bomLen)
	if err != nil {
		return err
	}
	for n := 1; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("reading %s: %w", s.path, err)
			}
		}
		if _, err := rows.next(); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if n > s.maxRows {
			return fmt.Errorf("%w: %s has more than max_rows (%d) rows; nothing was imported. Raise max_rows if the file is right",
				connectors.ErrInvalidConfig, s.path, s.maxRows)
		}
	}
}

// Users implements connectors.UserSource. resume is the Resume of the last
// committed page ("" for the beginning): rows up to it are read again (to
// keep duplicate checks whole) but not yielded.
func (s *source) Users(ctx context.Context, resume string) iter.Seq2[connectors.UserPage, error] {
	return func(yield func(connectors.UserPage, error) bool) {
		skip := 0
		if resume != "" {
			n, err := strconv.Atoi(resume)
			if err != nil || n < 0 {
				yield(connectors.UserPage{}, fmt.Errorf("%w: resume position %q of %s is not a row number", connectors.ErrResyncRequired, resume, s.path))
				return
			}
			skip = n
		}
		start := time.Now()
		rows, closeFile, err := s.openRows(ctx)
		if err != nil {
			yield(connectors.UserPage{}, err)
			return
		}
		defer closeFile()

		l := lister{s: s, rows: rows, skip: skip, seenUser: map[string]seenRow{}, seenID: map[string]int32{}}
		stats, err := l.run(ctx, yield)
		if err != nil {
			if stats.stopped {
				return
			}
			yield(connectors.UserPage{}, err)
			return
		}
		if !stats.stopped {
			s.logger.Info("file read", "path", s.path, "rows", stats.rows, "users", stats.users, "invalid", stats.invalid,
				"pages", stats.pages, "resumed_after", skip, "duration", time.Since(start).Round(time.Millisecond))
		}
	}
}

// lister turns the rows of one listing into pages.
type lister struct {
	s    *source
	rows rowReader
	skip int
	// seenUser maps a lower-cased username to the row that first had it;
	// seenID an external id to its row, except ids equal to their row's
	// lower-cased username, which seenUser already holds (most files: this
	// halves the memory of the duplicate checks).
	seenUser map[string]seenRow
	seenID   map[string]int32
}

// seenRow is the row where a username was first seen.
type seenRow struct {
	row int32
	// idIsKey is set when the row's external id is the map key itself.
	idIsKey bool
}

type listStats struct {
	rows, users, invalid, pages int
	// stopped is set when the consumer stopped the iteration.
	stopped bool
}

func (l *lister) run(ctx context.Context, yield func(connectors.UserPage, error) bool) (listStats, error) {
	var st listStats
	var page connectors.UserPage
	inPage, last, dataRows := 0, 0, 0
	flush := func() bool {
		if err := ctx.Err(); err != nil {
			return false
		}
		page.Resume = strconv.Itoa(last)
		st.pages++
		if !yield(page, nil) {
			st.stopped = true
			return false
		}
		page = connectors.UserPage{}
		inPage = 0
		return true
	}
	for {
		rec, err := l.rows.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, err
		}
		dataRows++
		if dataRows%256 == 0 {
			if err := ctx.Err(); err != nil {
				return st, fmt.Errorf("reading %s: %w", l.s.path, err)
			}
		}
		last = rec.n
		if rec.blank {
			if rec.n > l.skip {
				inPage++
			}
		} else {
			u, problems := l.check(&rec)
			if rec.n > l.skip {
				st.rows++
				inPage++
				if len(problems) > 0 {
					page.Invalid = append(page.Invalid, connectors.InvalidRecord{Ref: rec.ref, Reason: strings.Join(problems, "; "), ExternalID: rec.key()})
					st.invalid++
				} else {
					page.Users = append(page.Users, u)
					st.users++
				}
			}
		}
		if inPage >= l.s.pageSize && !flush() {
			return st, ctxErr(ctx, l.s.path)
		}
	}
	if l.skip > last {
		return st, fmt.Errorf("%w: %s now ends at row %d, before the resume position %d: the file changed since the interrupted run",
			connectors.ErrResyncRequired, l.s.path, last, l.skip)
	}
	if inPage > 0 && !flush() {
		return st, ctxErr(ctx, l.s.path)
	}
	if err := ctx.Err(); err != nil {
		return st, fmt.Errorf("reading %s: %w", l.s.path, err)
	}
	return st, nil
}

// ctxErr is the error of a listing that stopped: the context's, or nil when
// the consumer stopped it.
func ctxErr(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return errStopped
}

// errStopped ends a listing the consumer stopped; it is never yielded.
var errStopped = errors.New("stopped by the consumer")

// check converts a row and checks it against the rows before it. It returns
// the user, or the problems that make the row invalid.
func (l *lister) check(rec *record) (connectors.User, []string) {
	if len(rec.problems) > 0 {
		return connectors.User{}, rec.problems
	}
	u, problems := toUser(&rec.values)
	problems = append(rec.valueProblems, problems...)
	u.Ref = rec.ref
	row := int32(rec.n)
	userKey := strings.ToLower(u.Username)
	idIsKey := u.ExternalID == userKey
	userFirst, userDup := l.seenUser[userKey]
	if userDup {
		problems = append(problems, fmt.Sprintf("username %q already appears in %s", u.Username, l.rows.name(int(userFirst.row))))
	}
	// Without an external_id column the id is the username, which the check
	// above already covers.
	if u.ExternalID != "" && l.rows.explicitIDs() {
		first, dup := l.seenID[u.ExternalID]
		if e, ok := l.seenUser[u.ExternalID]; !dup && ok && e.idIsKey {
			first, dup = e.row, true
		}
		switch {
		case dup && !(userDup && strings.EqualFold(u.ExternalID, u.Username)):
			problems = append(problems, fmt.Sprintf("external_id %q already appears in %s", u.ExternalID, l.rows.name(int(first))))
		case !dup && !idIsKey:
			l.seenID[strings.Clone(u.ExternalID)] = row
		}
	}
	if u.Username != "" && !userDup {
		l.seenUser[strings.Clone(userKey)] = seenRow{row: row, idIsKey: idIsKey}
	}
	return u, problems
}
