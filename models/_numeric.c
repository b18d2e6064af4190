/* A prediction's numeric features, compiled: the steps and quiet ranges of ModelMonitor and the learning
   step of MeanShiftBank (models/model_monitor.py, models/signals.py).

   With numpy these are some 25 array operations per prediction plus one call per ADWIN window, about a
   microsecond each: for a model with 48 numeric features that was most of its cost. Here they are loops
   with the very floating-point operations of the numpy path and MeanShift.update, in the same order (no
   contraction into fused multiply-adds, see pyproject.toml), so every state comes out bit for bit as
   theirs; tests/unit/test_signals.py and tests/unit/test_monitors.py compare them. The ADWIN windows are
   still River's, called through their own update method.

   Optional: when this does not build, the numpy path runs. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

static PyObject *update_name;

/* A writable, C-contiguous buffer of `count` 8-byte items (float64 or int64 numpy arrays). */
static int
view(PyObject *obj, Py_buffer *buf, Py_ssize_t count, const char *what)
{
    if (PyObject_GetBuffer(obj, buf, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (buf->itemsize != 8 || buf->len != count * 8) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of 8 bytes", what, count);
        PyBuffer_Release(buf);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(learn_doc,
"learn(x, n, pending, recent, ref_n, ref_mean, ref_m2, held, windows, outside, alpha, lag) -> list\n\n"
"Learn x[j] in signal j of the bank, for every j not marked in `outside` (bytes, or None for none):\n"
"the recent mean, the oldest held value joining the reference once the signal is `lag` values past its\n"
"last change, the held value, and ADWIN's window. Returns the signals whose window fired.");

static PyObject *
learn(PyObject *self, PyObject *args)
{
    PyObject *x_obj, *n_obj, *pending_obj, *recent_obj, *ref_n_obj, *ref_mean_obj, *ref_m2_obj, *held_obj;
    PyObject *windows, *outside;
    double alpha;
    Py_ssize_t lag;
    if (!PyArg_ParseTuple(args, "OOOOOOOOO!Odn", &x_obj, &n_obj, &pending_obj, &recent_obj, &ref_n_obj,
                          &ref_mean_obj, &ref_m2_obj, &held_obj, &PyList_Type, &windows, &outside, &alpha, &lag))
        return NULL;
    Py_ssize_t k = PyList_GET_SIZE(windows);
    if (lag < 1) {
        PyErr_SetString(PyExc_ValueError, "lag must be >= 1");
        return NULL;
    }
    const char *skip = NULL;
    if (outside != Py_None) {
        if (!PyBytes_Check(outside) || PyBytes_GET_SIZE(outside) != k) {
            PyErr_SetString(PyExc_TypeError, "outside must be None or bytes of one flag per signal");
            return NULL;
        }
        skip = PyBytes_AS_STRING(outside);
    }
    Py_buffer b[8];
    PyObject *objs[8] = {x_obj, n_obj, pending_obj, recent_obj, ref_n_obj, ref_mean_obj, ref_m2_obj, held_obj};
    static const char *names[8] = {"x", "n", "pending", "recent", "ref_n", "ref_mean", "ref_m2", "held"};
    int got = 0;
    PyObject *fired = NULL;
    for (; got < 8; got++)
        if (view(objs[got], &b[got], got == 7 ? k * lag : k, names[got]) < 0)
            goto done;
    const double *x = b[0].buf;
    int64_t *n = b[1].buf;
    const int64_t *pending = b[2].buf;
    double *recent = b[3].buf;
    int64_t *ref_n = b[4].buf;
    double *ref_mean = b[5].buf, *ref_m2 = b[6].buf, *held = b[7].buf;
    fired = PyList_New(0);
    if (fired == NULL)
        goto done;
    for (Py_ssize_t j = 0; j < k; j++) {
        if (skip && skip[j])
            continue;
        double xj = x[j];
        int64_t nj = ++n[j];
        double r = recent[j];
        recent[j] = r + alpha * (xj - r);
        double *row = held + j * lag;
        int64_t slot = nj % lag;
        if (nj - lag > pending[j]) { /* the oldest held value joins the reference (Welford's update) */
            double oldest = row[slot];
            int64_t count = ++ref_n[j];
            double mean = ref_mean[j];
            double delta = oldest - mean;
            mean = mean + delta / (double)count;
            ref_mean[j] = mean;
            ref_m2[j] += delta * (oldest - mean);
        }
        row[slot] = xj;
        PyObject *value = PyFloat_FromDouble(xj);
        if (value == NULL)
            goto fail;
        PyObject *call[2] = {PyList_GET_ITEM(windows, j), value};
        PyObject *result = PyObject_VectorcallMethod(update_name, call, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(value);
        if (result == NULL)
            goto fail;
        int hit = result == Py_True;
        Py_DECREF(result);
        if (hit) {
            PyObject *column = PyLong_FromSsize_t(j);
            if (column == NULL || PyList_Append(fired, column) < 0) {
                Py_XDECREF(column);
                goto fail;
            }
            Py_DECREF(column);
        }
    }
    goto done;
fail:
    Py_CLEAR(fired);
done:
    while (got-- > 0)
        PyBuffer_Release(&b[got]);
    return fired;
}

PyDoc_STRVAR(pair_doc,
"pair(x, last, both) -> bool\n\n"
"If every value of x and every step |x - last| is finite: both[2i] = x[i], both[2i + 1] = |x[i] - last[i]|,\n"
"last[i] = x[i], and True. Otherwise nothing is written and False (the caller takes the general path).");

static PyObject *
pair(PyObject *self, PyObject *args)
{
    PyObject *x_obj, *last_obj, *both_obj;
    if (!PyArg_ParseTuple(args, "OOO", &x_obj, &last_obj, &both_obj))
        return NULL;
    Py_buffer x_buf, last_buf, both_buf;
    if (PyObject_GetBuffer(x_obj, &x_buf, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    Py_ssize_t k = x_buf.len / 8;
    PyObject *result = NULL;
    if (x_buf.itemsize != 8) {
        PyErr_SetString(PyExc_ValueError, "x: expected float64");
        goto x_done;
    }
    if (view(last_obj, &last_buf, k, "last") < 0)
        goto x_done;
    if (view(both_obj, &both_buf, 2 * k, "both") < 0)
        goto last_done;
    const double *x = x_buf.buf;
    double *last = last_buf.buf, *both = both_buf.buf;
    result = Py_False;
    for (Py_ssize_t i = 0; i < k; i++)
        if (!isfinite(x[i]) || !isfinite(fabs(x[i] - last[i])))
            goto both_done;
    for (Py_ssize_t i = 0; i < k; i++) {
        both[2 * i] = x[i];
        both[2 * i + 1] = fabs(x[i] - last[i]);
        last[i] = x[i];
    }
    result = Py_True;
both_done:
    PyBuffer_Release(&both_buf);
last_done:
    PyBuffer_Release(&last_buf);
x_done:
    PyBuffer_Release(&x_buf);
    Py_XINCREF(result);
    return result;
}

PyDoc_STRVAR(ranges_doc,
"ranges(x, low, high, passed) -> list\n\n"
"Count x[i] in passed[i] where low[i] <= x[i] <= high[i] (its range watch's quiet range); return the\n"
"other positions, whose values go to their watch.");

static PyObject *
ranges(PyObject *self, PyObject *args)
{
    PyObject *x_obj, *low_obj, *high_obj, *passed_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &x_obj, &low_obj, &high_obj, &passed_obj))
        return NULL;
    Py_buffer b[4];
    PyObject *objs[4] = {x_obj, low_obj, high_obj, passed_obj};
    static const char *names[4] = {"x", "low", "high", "passed"};
    if (PyObject_GetBuffer(x_obj, &b[0], PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    Py_ssize_t k = b[0].len / 8;
    int got = 1;
    PyObject *outside = NULL;
    for (; got < 4; got++)
        if (view(objs[got], &b[got], k, names[got]) < 0)
            goto done;
    const double *x = b[0].buf, *low = b[1].buf, *high = b[2].buf;
    int64_t *passed = b[3].buf;
    outside = PyList_New(0);
    if (outside == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < k; i++) {
        if (low[i] <= x[i] && x[i] <= high[i]) {
            passed[i] += 1;
            continue;
        }
        PyObject *at = PyLong_FromSsize_t(i);
        if (at == NULL || PyList_Append(outside, at) < 0) {
            Py_XDECREF(at);
            Py_CLEAR(outside);
            goto done;
        }
        Py_DECREF(at);
    }
done:
    while (got-- > 0)
        PyBuffer_Release(&b[got]);
    return outside;
}

static PyMethodDef methods[] = {
    {"learn", learn, METH_VARARGS, learn_doc},
    {"pair", pair, METH_VARARGS, pair_doc},
    {"ranges", ranges, METH_VARARGS, ranges_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "models._numeric", "A prediction's numeric features, compiled.", -1, methods,
};

PyMODINIT_FUNC
PyInit__numeric(void)
{
    update_name = PyUnicode_InternFromString("update");
    if (update_name == NULL)
        return NULL;
    return PyModule_Create(&module);
}
