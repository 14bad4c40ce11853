import functools
import itertools
import sys
import types

import matplotlib.pyplot as plt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.tf_export_partial import (
    AlreadyExportedError,
    ApiConflictError,
    ApiModule,
    SimplePartial,
    api_export,
    build_api,
    build_demo_library,
    counted,
    draw_pipeline,
    export_by_wrapping,
    my_export,
    walk_api,
)

SETTINGS = settings(max_examples=40, deadline=None)
values = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.none())
keyword_dicts = st.dictionaries(st.sampled_from(["x", "y", "z", "w"]), values, max_size=3)


def record(*args, **kwargs):
    return args, kwargs


def fresh_function():
    def f():
        return None

    return f


@pytest.fixture
def library():
    """Build the demo library under a private prefix and remove its modules afterwards."""
    prefix = "test_tf_export_lib"
    yield build_demo_library(prefix)
    for name in [m for m in sys.modules if m.startswith(prefix + ".")]:
        del sys.modules[name]


@SETTINGS
@given(
    a1=st.lists(values, max_size=3),
    k1=keyword_dicts,
    a2=st.lists(values, max_size=3),
    k2=keyword_dicts,
)
def test_partial_call_order_matches_closure(a1, k1, a2, k2):
    """partial(f, *a1, **k1)(*a2, **k2) equals a hand-written closure: a1 then a2, k2 wins."""

    def closure(*args, **kwargs):  # oracle written without partial
        return record(*a1, *args, **{**k1, **kwargs})

    expected = closure(*a2, **k2)
    assert expected == (tuple(a1) + tuple(a2), {**k1, **k2})
    assert SimplePartial(record, *a1, **k1)(*a2, **k2) == expected
    assert functools.partial(record, *a1, **k1)(*a2, **k2) == expected


@SETTINGS
@given(a1=st.lists(values, max_size=3), k1=keyword_dicts, a2=st.lists(values, max_size=3))
def test_partial_stores_func_args_keywords(a1, k1, a2):
    """SimplePartial exposes .func/.args/.keywords and flattens nesting like functools.partial."""
    mine = SimplePartial(SimplePartial(record, *a1, **k1), *a2, y=1)
    ref = functools.partial(functools.partial(record, *a1, **k1), *a2, y=1)
    assert mine.func is record and ref.func is record
    assert mine.args == ref.args == tuple(a1) + tuple(a2)
    assert mine.keywords == ref.keywords == {**k1, "y": 1}


@SETTINGS
@given(a1=st.lists(values, max_size=3), k1=keyword_dicts, a2=st.lists(values, max_size=3))
def test_inner_partial_with_attributes_is_not_flattened(a1, k1, a2):
    """An inner partial carrying an attribute stays nested (CPython's rule); calls still agree."""
    inner_mine, inner_ref = SimplePartial(record, *a1, **k1), functools.partial(record, *a1, **k1)
    inner_mine.note = inner_ref.note = "tagged"  # creates an instance __dict__
    mine, ref = SimplePartial(inner_mine, *a2, y=1), functools.partial(inner_ref, *a2, y=1)
    assert mine.func is inner_mine and ref.func is inner_ref
    assert mine.args == ref.args == tuple(a2) and mine.keywords == ref.keywords == {"y": 1}
    assert mine() == ref() == (tuple(a1) + tuple(a2), {**k1, "y": 1})


def test_partial_doc_is_the_class_docstring():
    """A partial has no __name__; its __doc__ is partial's own, not the wrapped function's."""

    def f():
        """f's docstring."""

    p = functools.partial(f)
    assert not hasattr(p, "__name__")
    assert p.__doc__ == functools.partial.__doc__ != f.__doc__


def test_partial_of_class_and_of_bound_method():
    """A partial of a class builds instances; a partial of a bound method keeps its self."""
    make_complex = SimplePartial(complex, imag=2)
    assert make_complex(3) == complex(3, 2)
    assert make_complex(3, imag=-1) == complex(3, -1)  # call-time keyword overrides
    qualify = SimplePartial("{}.{}".format, "mylib")  # bound method of the str "{}.{}"
    assert (
        qualify("math.add")
        == "mylib.math.add"
        == functools.partial("{}.{}".format, "mylib")("math.add")
    )
    assert functools.partial(complex, imag=2)(3) == make_complex(3)


def test_wrapping_decorator_loses_identity_and_metadata():
    """A wrapper is a new object; without update_wrapper it loses __name__/__doc__."""

    def area(r):
        """Area of a circle."""
        return 3 * r * r

    bare = export_by_wrapping("area")(area)
    kept = export_by_wrapping("area", keep_metadata=True)(area)
    assert bare is not area and bare.__name__ == "wrapper" and bare.__doc__ is None
    assert kept is not area and kept.__name__ == "area" and kept.__doc__ == "Area of a circle."
    assert kept.__wrapped__ is area and kept(2) == area(2) == 12

    class Point:
        pass

    wrapped_cls = export_by_wrapping("Point", keep_metadata=True)(Point)
    assert not isinstance(wrapped_cls, type)
    with pytest.raises(TypeError):
        isinstance(Point(), wrapped_cls)


def test_counted_is_a_well_behaved_wrapper():
    """functools.wraps keeps the name and sets __wrapped__; the counter counts real calls."""

    def double(x):
        return 2 * x

    c = counted(double)
    assert c.__name__ == "double" and c.__wrapped__ is double
    assert [c(i) for i in range(5)] == [0, 2, 4, 6, 8] and c.calls == 5


def test_api_export_returns_the_same_object():
    """The decorator returns its argument itself (`is`) for functions, classes and wrappers."""
    f = fresh_function()

    class C:
        pass

    w = counted(fresh_function())
    for obj in (f, C, w):
        assert my_export("x.y")(obj) is obj


def test_recorded_names_tuple():
    """The attribute holds exactly the names given; v1 defaults to them or takes its own list."""
    f, g = fresh_function(), fresh_function()
    my_export("math.add", "add")(f)
    my_export("nn.relu", v1=["relu"])(g)
    assert f._mylib_api_names == ("math.add", "add") == f._mylib_api_names_v1
    assert g._mylib_api_names == ("nn.relu",) and g._mylib_api_names_v1 == ("relu",)


def test_partial_of_my_export_flattens_like_estimator_export():
    """partial(my_export, api_name=...) flattens to api_export; the later api_name wins."""
    other_export = functools.partial(my_export, api_name="otherlib")
    assert other_export.func is api_export and other_export.keywords == {"api_name": "otherlib"}
    f = fresh_function()
    assert other_export("otherlib.f")(f) is f
    assert f._otherlib_api_names == ("otherlib.f",) and not hasattr(f, "_mylib_api_names")


def test_my_export_is_a_partial_of_api_export():
    """my_export is functools.partial(api_export, api_name='mylib'); call-time keywords override."""
    assert isinstance(my_export, functools.partial)
    assert my_export.func is api_export
    assert my_export.keywords == {"api_name": "mylib"} and my_export.args == ()
    exporter = my_export("a.b")
    assert isinstance(exporter, api_export) and exporter.api_name == "mylib"
    f = fresh_function()
    my_export("a.b", api_name="other")(f)
    assert f._other_api_names == ("a.b",) and not hasattr(f, "_mylib_api_names")


def test_duplicate_export_raises_and_writes_nothing():
    """Re-export under one API raises, keeps the first names; another API is independent."""
    f = fresh_function()
    my_export("one", v1=["old_one"])(f)
    with pytest.raises(AlreadyExportedError):
        my_export("two")(f)
    assert f._mylib_api_names == ("one",) and f._mylib_api_names_v1 == ("old_one",)
    api_export("one", api_name="otherlib")(f)  # different api_name: fine
    assert f._otherlib_api_names == ("one",)


def test_subclass_of_exported_class():
    """A subclass inherits the attribute but is neither 'already exported' nor in the API."""

    @my_export("Base")
    class Base:
        pass

    class Sub(Base):
        pass

    module = types.ModuleType("m")
    module.Base, module.Sub = Base, Sub
    assert dict(walk_api(build_api([module], api_name="mylib", root="r"))) == {"Base": Base}
    assert my_export("Sub")(Sub) is Sub
    assert dict(walk_api(build_api([module], api_name="mylib", root="r"))) == {
        "Base": Base,
        "Sub": Sub,
    }


def test_invalid_dotted_name_raises():
    """Names whose segments are not identifiers are rejected at decoration time."""
    for bad in ["", "a..b", "1x", "a.b-c"]:
        with pytest.raises(ValueError):
            my_export(bad)


def test_demo_library_namespace(library):
    """Every public name resolves (`is`) to the library's object; private names stay out."""
    ops, layers = library
    api = build_api([ops, layers], api_name="mylib", root="mylib")
    assert api.math.add is ops.add and api.add is ops.add and layers.add is ops.add
    assert api.math.scale is ops.scale and api.math.scale.__wrapped__._mylib_api_names
    assert api.nn.relu is ops.relu and api.layers.Dense is layers.Dense
    assert api.math.pi == 3.14159 and api.math.pi is ops.PI
    assert isinstance(api.math, ApiModule) and api.math.__name__ == "mylib.math"
    assert sorted(dict(walk_api(api))) == sorted(
        ["add", "math.add", "math.scale", "math.pi", "nn.relu", "layers.Dense"]
    )
    v1 = build_api([ops, layers], api_name="mylib", root="mylib_v1", v1=True)
    assert v1.relu is ops.relu and v1.nn.relu is ops.relu
    assert ops._mylib_api_constants == [(("math.pi",), "PI")]


def test_two_objects_one_name_raises():
    """Two different objects exported under one dotted name is an error."""
    f, g = fresh_function(), fresh_function()
    module = types.ModuleType("m")
    module.f, module.g = my_export("x.f")(f), my_export("x.f")(g)
    with pytest.raises(ApiConflictError):
        build_api([module], api_name="mylib", root="r")


dotted_names = st.lists(st.sampled_from("abc"), min_size=1, max_size=3).map(".".join)


@SETTINGS
@given(data=st.data(), names=st.lists(dotted_names, min_size=1, max_size=8, unique=True))
def test_random_trees_resolve_or_conflict(data, names):
    """Prefix-free random names: every leaf `is` its object; 'a' with 'a.b': ApiConflictError."""
    owner = data.draw(st.lists(st.integers(0, 3), min_size=len(names), max_size=len(names)))
    objects = [fresh_function() for _ in range(4)]
    module = types.ModuleType("random_lib")
    for i, obj in enumerate(objects):
        mine = [n for n, o in zip(names, owner, strict=True) if o == i]
        if mine:
            my_export(*mine)(obj)
        setattr(module, f"obj{i}", obj)
    expected = {n: objects[o] for n, o in zip(names, owner, strict=True)}
    conflict = any(b.startswith(a + ".") for a, b in itertools.permutations(names, 2))
    if conflict:
        with pytest.raises(ApiConflictError):
            build_api([module], api_name="mylib", root="r")
        return
    api = build_api([module], api_name="mylib", root="r")
    for name, obj in expected.items():
        assert functools.reduce(getattr, name.split("."), api) is obj
    assert dict(walk_api(api)).keys() == expected.keys()


def test_figure_shows_generated_names(library):
    """The diagram's text includes every public name and the decorator call of each symbol."""
    ops, layers = library
    api = build_api([ops, layers], api_name="mylib", root="mylib")
    fig = draw_pipeline([ops, layers], api, api_name="mylib")
    text = "\n".join(t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)
    for name in ["add", "math.add", "math.scale", "math.pi", "nn.relu", "layers.Dense"]:
        assert f"mylib.{name}" in text
    assert "@my_export('math.add', 'add')" in text and "_mylib_api_constants" in text
