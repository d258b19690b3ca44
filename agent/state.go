package agent

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/nacl/box"
)

// The files of the state folder, each written 0600 in a 0700 folder.
const (
	stateFile     = "agent.json"
	signKeyFile   = "sign.key"
	boxKeyFile    = "box.key"
	directoryFile = "directory.json"
	journalDir    = "journal"
)

// State is what an enrolled agent keeps: who it is, where its server is,
// and its keys. The private keys never leave the state folder.
type State struct {
	// Server is the base URL of selfserve's public listener.
	Server     string `json:"server"`
	AgentID    int64  `json:"agent_id"`
	Tenant     string `json:"tenant"`
	Connection string `json:"connection"`
	// Directory is what the agent reads: "ad" or "file".
	Directory string `json:"directory"`
	// CAFile, if set, is a PEM bundle trusted for the server's TLS
	// certificate besides the system's.
	CAFile string `json:"ca_file,omitempty"`

	dir     string
	signKey ed25519.PrivateKey
	boxPub  *[32]byte
	boxKey  *[32]byte
}

// Dir returns the state folder.
func (s *State) Dir() string { return s.dir }

// newKeys makes the agent's two key pairs.
func newKeys() (ed25519.PrivateKey, *[32]byte, *[32]byte, error) {
	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	return sign, pub, priv, nil
}

// writePrivate writes a file readable by its owner only, atomically.
func writePrivate(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// save writes the state and keys into dir.
func (s *State) save() error {
	if err := os.MkdirAll(filepath.Join(s.dir, journalDir), 0o700); err != nil {
		return err
	}
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return err
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	keys := append(append([]byte{}, s.boxPub[:]...), s.boxKey[:]...)
	for name, data := range map[string][]byte{stateFile: append(js, '\n'), signKeyFile: s.signKey, boxKeyFile: keys} {
		if err := writePrivate(filepath.Join(s.dir, name), data); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// ErrNotEnrolled: the state folder holds no enrolled agent.
var ErrNotEnrolled = errors.New("this agent is not enrolled: run `selfserve agent enrol --server URL --code CODE` first")

// LoadState reads the state folder of an enrolled agent.
func LoadState(dir string) (*State, error) {
	js, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNotEnrolled)
	}
	if err != nil {
		return nil, err
	}
	s := &State{dir: dir}
	if err := json.Unmarshal(js, s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	sign, err := os.ReadFile(filepath.Join(dir, signKeyFile))
	if err != nil {
		return nil, err
	}
	if len(sign) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%s: not an Ed25519 private key", filepath.Join(dir, signKeyFile))
	}
	keys, err := os.ReadFile(filepath.Join(dir, boxKeyFile))
	if err != nil {
		return nil, err
	}
	if len(keys) != 64 {
		return nil, fmt.Errorf("%s: not an X25519 key pair", filepath.Join(dir, boxKeyFile))
	}
	s.signKey = ed25519.PrivateKey(sign)
	s.boxPub, s.boxKey = (*[32]byte)(keys[:32]), (*[32]byte)(keys[32:])
	return s, nil
}
