from sealroom.core.runtime.paths import is_within


def test_is_within_goes_by_whole_names():
    assert (
        is_within("/docs/a.txt", "/docs") and is_within("/docs", "/docs") and is_within("/docs/x", "/docs/")
    )
    assert not is_within("/docsy/a.txt", "/docs") and not is_within("/doc", "/docs")
    assert is_within("/anything", "/")
