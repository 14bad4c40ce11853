"""How a `@tf_export`-style decorator publishes names, rebuilt from functools.partial up.

`SimplePartial` shows what a `functools.partial` object stores (`func`, `args`, `keywords`) and
how it merges arguments; `export_by_wrapping` is the tempting wrong design (a new wrapper object). `api_export` is an original, minimal take on the
idea behind TensorFlow's `tensorflow/python/util/tf_export.py`: the decorator only writes the
public names onto the symbol as `_<api>_api_names` and returns the symbol unchanged, and
`my_export = functools.partial(api_export, api_name="mylib")` fixes which API it writes to.
A separate generator, `build_api`, scans modules for those attributes and builds a nested
namespace of `ApiModule`s so that `api.math.add is add`. No TensorFlow is imported.
"""

# --8<-- [start:imports]
import functools
import inspect
import sys
import types
from typing import NamedTuple

import matplotlib.pyplot as plt

# --8<-- [end:imports]


# --8<-- [start:simple_partial]
class SimplePartial:
    """What `functools.partial` stores and does, in plain Python (no 3.14 `Placeholder`)."""

    __slots__ = ("func", "args", "keywords", "__dict__")  # __dict__ holds only extra attributes

    def __init__(self, func, /, *args, **keywords):
        # flatten partial(partial(f, 1), 2) into f, (1, 2) -- but, like CPython's C partial, only
        # when the inner one has no instance attributes (CPython: its __dict__ was never created)
        if isinstance(func, SimplePartial) and not vars(func):
            args, keywords = func.args + args, {**func.keywords, **keywords}
            func = func.func
        self.func, self.args, self.keywords = func, args, keywords

    def __call__(self, /, *args, **keywords):
        # frozen positionals go first; a call-time keyword overrides a frozen one
        return self.func(*self.args, *args, **{**self.keywords, **keywords})


# --8<-- [end:simple_partial]


# --8<-- [start:wrapping]
def export_by_wrapping(*names, keep_metadata=False):
    """The tempting design: put the names on a NEW wrapper object and return that."""

    def decorate(symbol):
        def wrapper(*args, **kwargs):
            return symbol(*args, **kwargs)

        if keep_metadata:  # copy __name__, __doc__, __qualname__, ...; set __wrapped__
            functools.update_wrapper(wrapper, symbol)
        wrapper.exported_names = names
        return wrapper  # a function, even when `symbol` was a class

    return decorate


def counted(fn):
    """A well-behaved wrapper (functools.wraps) that counts calls."""

    @functools.wraps(fn)  # wrapper.__wrapped__ = fn, so inspect.unwrap can see through it
    def wrapper(*args, **kwargs):
        wrapper.calls += 1
        return fn(*args, **kwargs)

    wrapper.calls = 0
    return wrapper


# --8<-- [end:wrapping]


# --8<-- [start:api_export]
class AlreadyExportedError(Exception):
    """The symbol already carries public names for this API."""


def api_attr(api_name, kind="names", v1=False):
    """Attribute that records exports: `_mylib_api_names`, `_mylib_api_constants_v1`, ..."""
    return f"_{api_name}_api_{kind}" + ("_v1" if v1 else "")


class api_export:  # lower-case on purpose: it is used like a function, `@api_export(...)`
    """Record public dotted names on a symbol; the symbol itself is returned unchanged."""

    def __init__(self, *names, api_name, v1=None):
        for dotted in (*names, *(v1 or ())):
            if not all(part.isidentifier() for part in dotted.split(".")):
                raise ValueError(f"not a dotted Python name: {dotted!r}")
        self.names = names  # first name = canonical
        self.names_v1 = tuple(v1) if v1 is not None else names  # v1 defaults to the v2 names
        self.api_name = api_name

    def __call__(self, symbol):
        target = inspect.unwrap(symbol)  # innermost object under any functools.wraps wrappers
        attrs = {
            api_attr(self.api_name): self.names,
            api_attr(self.api_name, v1=True): self.names_v1,
        }
        for attr in attrs:
            # vars(), not hasattr(): a subclass INHERITS its parent's attribute
            if attr in vars(target):
                raise AlreadyExportedError(
                    f"{target.__name__} already has {attr}={vars(target)[attr]}"
                )
        for attr, names in attrs.items():
            setattr(target, attr, names)
        return symbol  # the very same object: no wrapper, no metadata to lose

    def export_constant(self, module_name, name):
        """Constants (ints, strings) cannot carry attributes: record them on their module."""
        module = sys.modules[module_name]
        for v1, names in ((False, self.names), (True, self.names_v1)):
            attr = api_attr(self.api_name, "constants", v1)
            vars(module).setdefault(attr, []).append((names, name))


my_export = functools.partial(api_export, api_name="mylib")  # like tf_export for "tensorflow"
# --8<-- [end:api_export]


# --8<-- [start:library]
def make_module(name, **members):
    """Create module `name` holding `members` and register it in sys.modules, as import would."""
    module = types.ModuleType(name)
    vars(module).update(members)
    sys.modules[name] = module
    return module


def build_demo_library(prefix="mylib_src"):
    """A tiny two-module 'library' that exports with @my_export; fresh objects on every call."""

    @my_export("math.add", "add")
    def add(a, b):
        """Return a + b."""
        return a + b

    @my_export("math.scale")
    @counted  # exported object is the wrapper; names are recorded on the inner function
    def scale(x, factor=2.0):
        return x * factor

    @my_export("nn.relu", v1=["nn.relu", "relu"])  # TF1-style alias only in the v1 API
    def relu(x):
        return max(x, 0.0)

    @my_export("layers.Dense")
    class Dense:
        def __init__(self, units):
            self.units = units

    ops = make_module(f"{prefix}.ops", add=add, scale=scale, relu=relu, PI=3.14159, _tmp=1)
    my_export("math.pi").export_constant(ops.__name__, "PI")
    layers = make_module(f"{prefix}.layers", Dense=Dense, add=add)  # re-exported `add`
    return ops, layers


# --8<-- [end:library]


# --8<-- [start:build_api]
class ApiConflictError(Exception):
    """Two objects want one public name, or a name is both a leaf and a namespace."""


class ApiModule(types.ModuleType):
    """A generated public namespace such as `mylib.math`."""


class Export(NamedTuple):
    module: str
    name: str  # Python name inside `module`
    obj: object
    names: tuple  # public dotted names
    constant: bool


def find_exports(modules, *, api_name, v1=False):
    """Scan modules for the attributes that api_export wrote; yield one Export per symbol."""
    names_attr = api_attr(api_name, "names", v1)
    for module in modules:
        for name, obj in vars(module).items():
            target = inspect.unwrap(obj) if callable(obj) else obj
            names = getattr(target, "__dict__", {}).get(names_attr)  # own attr only
            if names:
                yield Export(module.__name__, name, obj, names, constant=False)
        for names, name in vars(module).get(api_attr(api_name, "constants", v1), ()):
            yield Export(module.__name__, name, getattr(module, name), names, constant=True)


def build_api(modules, *, api_name, root, v1=False):
    """Nested ApiModule tree with every exported dotted name bound to the original object."""
    table = {}  # dotted name -> object
    for export in find_exports(modules, api_name=api_name, v1=v1):
        for dotted in export.names:
            if table.setdefault(dotted, export.obj) is not export.obj:
                raise ApiConflictError(f"{dotted!r} would name two different objects")
    for dotted in table:  # "a" and "a.b" cannot both exist: "a" is a leaf, not a namespace
        parts = dotted.split(".")
        for i in range(1, len(parts)):
            if ".".join(parts[:i]) in table:
                raise ApiConflictError(f"{'.'.join(parts[:i])!r} is a symbol, {dotted!r} needs it")
    api = ApiModule(root)
    for dotted, obj in sorted(table.items()):
        *path, leaf = dotted.split(".")
        node = api
        for part in path:
            if part not in vars(node):
                setattr(node, part, ApiModule(f"{node.__name__}.{part}"))
            node = getattr(node, part)
        setattr(node, leaf, obj)
    return api


def walk_api(node, prefix=""):
    """Yield (dotted name, object) for every leaf of a generated namespace, sorted."""
    for key, value in sorted(vars(node).items()):
        if key.startswith("__"):  # __name__, __doc__, __spec__, ... of the module object
            continue
        if isinstance(value, ApiModule):
            yield from walk_api(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


# --8<-- [end:build_api]


# --8<-- [start:figure]
def draw_pipeline(modules, api, *, api_name, export_name="my_export"):
    """Boxes and arrows: decorator -> recorded attribute -> build_api -> public namespace."""
    rows, seen = [], set()
    for e in find_exports(modules, api_name=api_name):
        if id(e.obj) in seen:  # a re-exported object is drawn once
            continue
        seen.add(id(e.obj))
        call = f"{export_name}({', '.join(map(repr, e.names))})"
        if e.constant:
            owner = e.module.rsplit(".", 1)[-1]
            left = f"{call}\n.export_constant(..., {e.name!r})"
            attr = f"{owner}.{api_attr(api_name, 'constants')}\n+= [({e.names}, {e.name!r})]"
        else:
            left = f"@{call}\n{'class' if isinstance(e.obj, type) else 'def'} {e.name}"
            attr = f"{e.name}.{api_attr(api_name)}\n= {e.names}"
        rows.append((left, attr))
    leaves = [f"{api.__name__}.{dotted}" for dotted, _ in walk_api(api)]

    # Two columns for a phone-width page: decorator -> attribute per row, then the generator
    # (bottom right) collects every attribute and builds the namespace (bottom left).
    fig = plt.figure(figsize=(5.2, 1.0 + 0.8 * len(rows) + 2.2))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    mono = dict(family="monospace", fontsize=10, va="center")

    def boxed(x, y, text, fc, ec):
        return ax.text(x, y, text, bbox=dict(boxstyle="round,pad=0.3", fc=fc, ec=ec), **mono)

    def link(src, dst, start=(1, 0.5), end=(0, 0.5), connection="arc3"):  # box edge to box edge
        style = dict(arrowstyle="->", color="#555555", shrinkA=4, shrinkB=4,
                     connectionstyle=connection)  # fmt: skip
        ax.annotate("", xy=end, xycoords=dst, xytext=start, textcoords=src, arrowprops=style)

    top, bottom = 0.9, 0.32  # rows spread between these heights; generator and namespace below
    call = f"build_api(\n  modules,\n  api_name={api_name!r},\n  root={api.__name__!r})"
    # Right-column lines padded to one width (monospace): the boxes share a right edge, and
    # the arrows into the generator go out to the right, down one line and back in.
    width = max(len(line) for text in [call, *(a for _, a in rows)] for line in text.split("\n"))

    def pad(text):
        return "\n".join(line.ljust(width) for line in text.split("\n"))

    gen = boxed(0.54, 0.12, pad(call), "#e7f5e9", "#3d8b4f")
    out = boxed(0.01, 0.12, "\n".join(leaves), "#f3eefb", "#6d4aa5")
    for i, (left, attr) in enumerate(rows):
        y = top - i * (top - bottom) / max(len(rows) - 1, 1)
        src = boxed(0.01, y, left, "#eef3fb", "#4a6fa5")
        mid = boxed(0.54, y, pad(attr), "#fdf3e1", "#b5832a")
        link(src, mid)
        link(mid, gen, end=(1, 0.5), connection="bar,armA=-8,armB=-8,fraction=0")
    link(gen, out, start=(0, 0.5), end=(1, 0.5))
    titles = {(0.01, 0.985): "装饰器", (0.54, 0.985): "记录的属性"}
    titles |= {(0.01, 0.25): "公开命名空间", (0.54, 0.25): "生成器"}
    for (x, y), title in titles.items():
        ax.text(x, y, title, fontsize=11, weight="bold", va="top")
    return fig


# --8<-- [end:figure]


if __name__ == "__main__":
    ops, layers = build_demo_library()
    api = build_api([ops, layers], api_name="mylib", root="mylib")
    for dotted, obj in walk_api(api):
        print(f"mylib.{dotted:<12} -> {type(obj).__name__} {getattr(obj, '__name__', obj)}")
    print("api.math.add is add:", api.math.add is ops.add)
    print("my_export.func is api_export:", my_export.func is api_export, my_export.keywords)
    try:
        my_export("other.add")(ops.add)
    except AlreadyExportedError as err:
        print("second export:", err)
