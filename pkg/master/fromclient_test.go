package master

import (
	"reflect"
	"testing"

	"github.com/beo-cluster/beo/pkg/wire"
)

// TestFromClient: a client's exec keeps only what a client may ask; the
// master's own fields (who it runs as, its files, a restore) are dropped.
// A field added to wire.Exec fails this test until it is decided on.
func TestFromClient(t *testing.T) {
	clientMay := map[string]bool{"Version": true, "ID": true, "Node": true, "Path": true, "Argv": true, "Env": true,
		"Dir": true, "Rlim": true, "NoIO": true, "NoStdin": true, "Stdin": true, "Stdout": true, "Stderr": true, "Fork": true}
	masterOnly := map[string]bool{"Cred": true, "Files": true, "Ghost": true, "Restore": true}
	typ := reflect.TypeFor[wire.Exec]()
	in := reflect.New(typ).Elem()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !clientMay[f.Name] && !masterOnly[f.Name] {
			t.Errorf("wire.Exec.%s: say in fromClient whether a client may set it", f.Name)
		}
		v := in.Field(i) // something non-zero in every field
		switch v.Kind() {
		case reflect.Int, reflect.Int64:
			v.SetInt(7)
		case reflect.Uint64:
			v.SetUint(7)
		case reflect.String:
			v.SetString("x")
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Slice:
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		case reflect.Pointer:
			v.Set(reflect.New(v.Type().Elem()))
		case reflect.Struct:
			v.Field(0).Set(reflect.ValueOf(uint32(7)).Convert(v.Field(0).Type()))
		}
	}
	out := reflect.ValueOf(fromClient(in.Interface().(wire.Exec)))
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		kept := !out.Field(i).IsZero()
		switch {
		case clientMay[name] && !kept:
			t.Errorf("%s: dropped, but a client may set it", name)
		case masterOnly[name] && kept:
			t.Errorf("%s: kept from a client; it is the master's to set", name)
		}
	}
}
