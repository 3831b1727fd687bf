//! A documented `__call__` for the native classes.
//!
//! PyO3 implements `__call__` as the type's `tp_call` slot, and CPython then exposes
//! `Cls.__call__` as a slot wrapper whose doc is its fixed "Call self as a function." with the
//! signature `(self, /, *args, **kwargs)`. [`document_call`] puts a method descriptor named
//! `__call__` into the type's dict instead, built from the same C function as the slot and
//! carrying a real docstring and text signature, so `help(Cls.__call__)` and
//! `inspect.signature(Cls.__call__)` show them. This is what `METH_COEXIST` does for methods
//! declared in C: the slot stays the fast path for `obj(...)` (the descriptor is written into
//! the dict directly, which does not re-derive the slot from it), and `obj.__call__(...)`
//! reaches the same code through the descriptor.

use std::ffi::CStr;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyType;
use pyo3::PyClass;

/// Add class `T` to `m` with `doc` as its `__call__`'s documentation (see
/// [`document_call`]).
pub fn add_callable_class<T: PyClass + pyo3::PyTypeInfo>(
    m: &Bound<'_, PyModule>,
    doc: &'static CStr,
) -> PyResult<()> {
    m.add_class::<T>()?;
    document_call::<T>(m.py(), doc)
}

/// Install `doc` (`"__call__($self, ...)\n--\n\n<text>"`: CPython's text-signature form) as
/// the documentation of `T.__call__`. Call once per class, at module init.
pub fn document_call<T: PyClass>(py: Python<'_>, doc: &'static CStr) -> PyResult<()> {
    let ty: Bound<'_, PyType> = py.get_type::<T>();
    let tp = ty.as_type_ptr();
    // SAFETY: `tp` is a heap type created by PyO3 (so `PyType_GetSlot` may read it); the
    // method definition lives for the rest of the process (leaked once per class), as CPython
    // requires of `PyMethodDef`s. `tp_call` has the C signature of `METH_VARARGS |
    // METH_KEYWORDS` functions: `(self, args tuple, kwargs dict or NULL)`; the descriptor
    // checks that `self` is an instance of `T` before calling it, as the slot's callers do.
    unsafe {
        let call = ffi::PyType_GetSlot(tp, ffi::Py_tp_call);
        if call.is_null() {
            return Err(crate::errors::runtime_error(format!(
                "internal: {} has no __call__ slot",
                ty.name()?
            )));
        }
        let def = Box::leak(Box::new(ffi::PyMethodDef {
            ml_name: c"__call__".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunctionWithKeywords: std::mem::transmute::<
                    *mut std::os::raw::c_void,
                    ffi::PyCFunctionWithKeywords,
                >(call),
            },
            ml_flags: ffi::METH_VARARGS | ffi::METH_KEYWORDS,
            ml_doc: doc.as_ptr(),
        }));
        let descr = Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(tp, def))?;
        // Generic attribute assignment writes the type's dict without `type.__setattr__`'s
        // slot update, which would route `obj(...)` through a Python-level lookup.
        let name = pyo3::intern!(py, "__call__");
        if ffi::PyObject_GenericSetAttr(tp.cast(), name.as_ptr(), descr.as_ptr()) != 0 {
            return Err(PyErr::fetch(py));
        }
        ffi::PyType_Modified(tp);
    }
    Ok(())
}
