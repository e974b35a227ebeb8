package initramfs

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beo-cluster/beo/pkg/config"
)

// modELF is a relocatable ELF64 with the sections of a module that
// matter here: _ftrace_eval_map, whose name (as the linker writes it)
// is the tail of .rela_ftrace_eval_map's, that relocation section, and
// __mcount_loc.
func modELF() []byte {
	names := "\x00.shstrtab\x00.rela_ftrace_eval_map\x00__mcount_loc\x00"
	const (
		nShstrtab = 1
		nRela     = 11
		nEval     = nRela + 5  // len(".rela")
		nMcount   = nRela + 22 // after ".rela_ftrace_eval_map\x00"
	)
	data := []byte("EVALMAPS")
	dataOff := 64 + len(names)
	shoff := (dataOff + len(data) + 7) &^ 7
	var b bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: 1,
		Shoff: uint64(shoff), Ehsize: 64, Shentsize: 64, Shnum: 5, Shstrndx: 1}
	copy(h.Ident[:], "\x7fELF\x02\x01\x01")
	binary.Write(&b, binary.LittleEndian, h)
	b.WriteString(names)
	b.Write(data)
	for b.Len() < shoff {
		b.WriteByte(0)
	}
	for _, s := range []elf.Section64{
		{},
		{Name: nShstrtab, Type: uint32(elf.SHT_STRTAB), Off: 64, Size: uint64(len(names)), Addralign: 1},
		{Name: nEval, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC | elf.SHF_WRITE), Off: uint64(dataOff), Size: uint64(len(data)), Addralign: 1},
		{Name: nRela, Type: uint32(elf.SHT_RELA), Flags: uint64(elf.SHF_INFO_LINK), Off: uint64(dataOff), Info: 2, Entsize: 24, Addralign: 8},
		{Name: nMcount, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: uint64(dataOff), Size: uint64(len(data)), Addralign: 1},
	} {
		binary.Write(&b, binary.LittleEndian, s)
	}
	return b.Bytes()
}

// signed appends a signature trailer as sign-file writes it.
func signed(b []byte) []byte {
	sig := []byte("PKCS#7 signature bytes")
	info := make([]byte, sigInfoLen)
	info[2] = 2 // PKEY_ID_PKCS7
	binary.BigEndian.PutUint32(info[8:], uint32(len(sig)))
	return append(append(append(bytes.Clone(b), sig...), info...), sigMarker...)
}

func sectionNames(t *testing.T, b []byte) []string {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range f.Sections {
		out = append(out, s.Name)
	}
	return out
}

func TestPrepareModule(t *testing.T) {
	mod := modELF()
	if got, want := strings.Join(sectionNames(t, mod), " "), " .shstrtab _ftrace_eval_map .rela_ftrace_eval_map __mcount_loc"; got != want {
		t.Fatalf("fixture sections %q, want %q", got, want)
	}
	for name, in := range map[string][]byte{"signed": signed(mod), "unsigned": mod} {
		orig := bytes.Clone(in)
		got, err := prepareModule(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(in, orig) {
			t.Errorf("%s: the input was modified", name)
		}
		if len(got) != len(mod) {
			t.Errorf("%s: %d bytes, want %d (the signature gone, nothing else)", name, len(got), len(mod))
		}
		if names := strings.Join(sectionNames(t, got), " "); names != " .shstrtab ftrace_eval_map .rela_ftrace_eval_map _mcount_loc" {
			t.Errorf("%s: sections %q, want _ftrace_eval_map and __mcount_loc renamed (each name a distinct one the kernel does not look for), the rest as they were", name, names)
		}
	}
	if _, err := prepareModule([]byte("not ELF")); err == nil {
		t.Error("a file that is not ELF: no error")
	}
}

func TestStripSignature(t *testing.T) {
	mod := modELF()
	if got, had, err := stripSignature(signed(mod)); err != nil || !had || !bytes.Equal(got, mod) {
		t.Errorf("signed: %d bytes, had %v, %v; want the module back", len(got), had, err)
	}
	if got, had, err := stripSignature(mod); err != nil || had || !bytes.Equal(got, mod) {
		t.Errorf("unsigned: had %v, %v", had, err)
	}
	bad := signed(mod)
	binary.BigEndian.PutUint32(bad[len(bad)-len(sigMarker)-4:], 1<<30)
	if _, _, err := stripSignature(bad); err == nil {
		t.Error("a signature longer than the file: no error")
	}
	if _, _, err := stripSignature([]byte("x" + sigMarker)); err == nil {
		t.Error("a marker without its header: no error")
	}
}

func TestKeepSignatures(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz-1.2.3")
	if keep, why := keepSignatures(kernel, "1.2.3"); !keep || !strings.Contains(why, "cannot tell") {
		t.Errorf("no config: %v %q, want kept", keep, why)
	}
	for text, want := range map[string]bool{
		"CONFIG_MODULE_SIG=y\n# CONFIG_MODULE_SIG_FORCE is not set\nCONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT=y\n": false,
		"CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_FORCE=y\n":                                                   true,
		"CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y\n":                                                        true,
	} {
		os.WriteFile(filepath.Join(dir, "config-1.2.3"), []byte(text), 0o644)
		if keep, why := keepSignatures(kernel, "1.2.3"); keep != want {
			t.Errorf("%q: keep %v (%s), want %v", text, keep, why, want)
		}
	}
}

// TestInitrdFileSystemModules builds a package whose kernel accepts
// unsigned modules: the NFS client's modules come prepared, a NIC driver
// as shipped; with SignedModules, both as shipped.
func TestInitrdFileSystemModules(t *testing.T) {
	o := fixture(t)
	dep := fakeDep + "kernel/net/sunrpc/sunrpc.ko:\nkernel/fs/nfs/nfs.ko: kernel/net/sunrpc/sunrpc.ko\nkernel/fs/nfs/nfsv4.ko: kernel/fs/nfs/nfs.ko kernel/net/sunrpc/sunrpc.ko\n"
	os.WriteFile(filepath.Join(o.Modules, "modules.dep"), []byte(dep), 0o644)
	mod := signed(modELF())
	for _, p := range []string{"kernel/net/sunrpc/sunrpc.ko", "kernel/fs/nfs/nfs.ko", "kernel/fs/nfs/nfsv4.ko"} {
		os.MkdirAll(filepath.Join(o.Modules, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(o.Modules, p), mod, 0o644)
	}
	nic := signed(modELF())
	os.WriteFile(filepath.Join(o.Modules, "kernel/drivers/net/virtio_net.ko"), nic, 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(o.Kernel), "config-9.9.9-test"), []byte("CONFIG_MODULE_SIG=y\n"), 0o644)
	o.BootModules = append(o.BootModules, "nfsv4")
	for _, keep := range []bool{false, true} {
		o.SignedModules = keep
		o.Dir = t.TempDir()
		if err := Build(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		for _, r := range readArchive(t, filepath.Join(o.Dir, "initrd")) {
			if strings.HasSuffix(r.Name, ".ko") {
				b := make([]byte, r.FileSize)
				r.ReadAt(b, 0)
				files[strings.TrimPrefix(r.Name, "lib/modules/9.9.9-test/")] = b
			}
		}
		for _, p := range []string{"kernel/net/sunrpc/sunrpc.ko", "kernel/fs/nfs/nfs.ko", "kernel/fs/nfs/nfsv4.ko"} {
			b, ok := files[p]
			switch {
			case !ok:
				t.Errorf("keep %v: %s not carried", keep, p)
			case keep && !bytes.Equal(b, mod):
				t.Errorf("keep %v: %s changed", keep, p)
			case !keep && (bytes.HasSuffix(b, []byte(sigMarker)) || strings.Contains(strings.Join(sectionNames(t, b), " "), " _ftrace_eval_map") || strings.Contains(strings.Join(sectionNames(t, b), " "), "__mcount_loc")):
				t.Errorf("keep %v: %s not prepared: sections %q", keep, p, sectionNames(t, b))
			}
		}
		if !bytes.Equal(files["kernel/drivers/net/virtio_net.ko"], nic) {
			t.Errorf("keep %v: the NIC driver was changed", keep)
		}
	}
}

func TestForClusterSignedModules(t *testing.T) {
	for text, want := range map[string]bool{
		"":                          false,
		"kernelcommandline quiet\n": false,
		"kernelcommandline 1 module.sig_enforce=1\n":                                       true,
		"kernelcommandline lockdown=integrity rw\n":                                        true,
		"kernelcommandline module.sig_enforce=0 rw\n":                                      false,
		"class big kernelcommandline lockdown=confidentiality\nkernelcommandline 0 none\n": true,
	} {
		cfg, err := config.Parse("config", []byte("nodes 2\niprange 10.0.0.10 10.0.0.11\n"+text), config.Options{})
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		o, err := ForCluster(Options{}, cfg, "")
		if err != nil || o.SignedModules != want {
			t.Errorf("%q: SignedModules %v, %v; want %v", text, o.SignedModules, err, want)
		}
	}
}
