// Command argocd-lua runs Argo CD resource-customization Lua (health checks, action
// discovery, actions) in gopher-lua, the engine Argo CD embeds, with the sandbox Argo CD
// gives a script from the argocd-cm ConfigMap: only the package, base and table libraries
// and a reduced os library (time and date); no string, math, io or debug library (so
// strings have no methods either). The resource is the global `obj`, the script has one
// second, and its returned table is encoded to JSON by gopher-json, as Argo CD does.
//
// stdin:  a JSON array of {"script": "<lua source>", "obj": {...}, "openLibs": false}
// stdout: a JSON array, one {"result": <json>} or {"error": "<message>"} per input.
//
// "openLibs": true opens every standard library first (Argo CD's `useOpenLibs` option and
// its built-in scripts).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
)

type job struct {
	Script   string         `json:"script"`
	Obj      map[string]any `json:"obj"`
	OpenLibs bool           `json:"openLibs"`
}

type outcome struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// toLua turns decoded JSON into Lua values: objects and arrays become tables (arrays
// 1-indexed), numbers LNumber, null nil.
func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case []any:
		t := L.CreateTable(len(x), 0)
		for _, item := range x {
			t.Append(toLua(L, item))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(x))
		for k, item := range x {
			t.RawSetH(lua.LString(k), toLua(L, item))
		}
		return t
	}
	return lua.LNil
}

// osTime is os.time: now, or the time of a table {year, month, day, hour, min, sec}.
func osTime(L *lua.LState) int {
	if L.GetTop() == 0 || L.Get(1) == lua.LNil {
		L.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	t := L.CheckTable(1)
	field := func(name string, def int) int {
		if n, ok := t.RawGetString(name).(lua.LNumber); ok {
			return int(n)
		}
		return def
	}
	when := time.Date(field("year", 1970), time.Month(field("month", 1)), field("day", 1),
		field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	L.Push(lua.LNumber(when.Unix()))
	return 1
}

// osDate is os.date for "*t"/"!*t" (a table) and otherwise a fixed layout.
func osDate(L *lua.LState) int {
	format := L.OptString(1, "%c")
	when := time.Now()
	if L.GetTop() >= 2 {
		when = time.Unix(int64(L.CheckNumber(2)), 0)
	}
	if len(format) > 0 && format[0] == '!' {
		when, format = when.UTC(), format[1:]
	}
	if format == "*t" {
		t := L.NewTable()
		for k, v := range map[string]int{
			"year": when.Year(), "month": int(when.Month()), "day": when.Day(),
			"hour": when.Hour(), "min": when.Minute(), "sec": when.Second(),
			"wday": int(when.Weekday()) + 1, "yday": when.YearDay(),
		} {
			t.RawSetString(k, lua.LNumber(v))
		}
		t.RawSetString("isdst", lua.LFalse)
		L.Push(t)
		return 1
	}
	L.Push(lua.LString(when.Format(time.ANSIC)))
	return 1
}

func openSafeOs(L *lua.LState) int {
	mod := L.RegisterModule(lua.OsLibName, map[string]lua.LGFunction{"time": osTime, "date": osDate})
	L.Push(mod)
	return 1
}

func loadSafeOs(L *lua.LState) int {
	L.Push(L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{"time": osTime, "date": osDate}))
	return 1
}

func run(j job) (out outcome) {
	defer func() {
		if r := recover(); r != nil {
			out = outcome{Error: fmt.Sprint("panic: ", r)}
		}
	}()
	L := lua.NewState(lua.Options{SkipOpenLibs: !j.OpenLibs})
	defer L.Close()
	libs := []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	}
	for _, lib := range libs {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true},
			lua.LString(lib.name)); err != nil {
			return outcome{Error: err.Error()}
		}
	}
	L.PreloadModule(lua.OsLibName, loadSafeOs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, j.Obj))
	if err := L.DoString(j.Script); err != nil {
		return outcome{Error: err.Error()}
	}
	ret := L.Get(-1)
	if ret.Type() != lua.LTTable {
		return outcome{Error: "expect table output from Lua script, not " + ret.Type().String()}
	}
	encoded, err := luajson.Encode(ret)
	if err != nil {
		return outcome{Error: err.Error()}
	}
	return outcome{Result: encoded}
}

func main() {
	var jobs []job
	if err := json.NewDecoder(os.Stdin).Decode(&jobs); err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua: stdin must be a JSON array of jobs:", err)
		os.Exit(2)
	}
	outs := make([]outcome, len(jobs))
	for i, j := range jobs {
		outs[i] = run(j)
	}
	if err := json.NewEncoder(os.Stdout).Encode(outs); err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua:", err)
		os.Exit(1)
	}
}
