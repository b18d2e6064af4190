/* A prediction's numeric features, compiled: the steps and quiet ranges of ModelMonitor and the learning
   step of MeanShiftBank (models/model_monitor.py, models/signals.py).

   With numpy these are some 25 array operations per prediction plus one call per ADWIN window, about a
   microsecond each: for a model with 48 numeric features that was most of its cost. Here they are loops
   with the very floating-point operations of the numpy path and MeanShift.update, in the same order (no
   contraction into fused multiply-adds, see pyproject.toml), so every state comes out bit for bit as
   theirs; tests/unit/test_signals.py and tests/unit/test_monitors.py compare them. ADWIN's window is
   ported too (below); a window of River's, as restored from a snapshot of a build without this module, is
   called through its own update method.

   Optional: when this does not build, the numpy path runs. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* --- ADWIN's window ------------------------------------------------------------------------------------

   A port of River's AdaptiveWindowing (the compiled core of river.drift.ADWIN; River is BSD-3-Clause), as
   a C type: the same exponential histogram of buckets, the same cut test every `clock` values, with every
   floating-point operation in the same order, so it answers and holds exactly what River's window does
   (tests/unit/test_signals.py runs both side by side). Called from the loop of learn() without a Python
   call per value. */

typedef struct {
    PyObject_HEAD
    double delta;
    int clock;
    Py_ssize_t max_buckets;  /* a row holds up to max_buckets + 1 buckets before two merge into the next */
    double min_window_length, grace_period;
    double total, variance, width;
    int tick, n_detections;  /* River's bucket counts and summed widths are left out: nothing reads them */
    Py_ssize_t rows, capacity;  /* row i: buckets of 2^i values each */
    Py_ssize_t *used;           /* buckets in each row */
    double *totals, *variances; /* row i's buckets at [i * (max_buckets + 1), ...) */
} Window;

static PyTypeObject WindowType;

#define AT(w, row, k) ((row) * ((w)->max_buckets + 1) + (k))

static int
window_grow(Window *w)
{
    Py_ssize_t capacity = w->capacity + 1, width = w->max_buckets + 1;  /* a row at a time: a window is long-lived */
    Py_ssize_t *used = PyMem_Realloc(w->used, capacity * sizeof(Py_ssize_t));
    if (used == NULL)
        return -1;
    w->used = used;
    double *totals = PyMem_Realloc(w->totals, capacity * width * sizeof(double));
    if (totals == NULL)
        return -1;
    w->totals = totals;
    double *variances = PyMem_Realloc(w->variances, capacity * width * sizeof(double));
    if (variances == NULL)
        return -1;
    w->variances = variances;
    w->capacity = capacity;
    return 0;
}

static int
window_push_row(Window *w)
{
    if (w->rows == w->capacity && window_grow(w) < 0)
        return -1;
    w->used[w->rows] = 0;
    for (Py_ssize_t k = 0; k <= w->max_buckets; k++)
        w->totals[AT(w, w->rows, k)] = w->variances[AT(w, w->rows, k)] = 0.0;
    w->rows++;
    return 0;
}

static inline void
row_insert(Window *w, Py_ssize_t row, double total, double variance)
{
    Py_ssize_t k = w->used[row]++;
    w->totals[AT(w, row, k)] = total;
    w->variances[AT(w, row, k)] = variance;
}

/* Drop a row's first n buckets. */
static inline void
row_compress(Window *w, Py_ssize_t row, Py_ssize_t n)
{
    double *totals = w->totals + AT(w, row, 0), *variances = w->variances + AT(w, row, 0);
    Py_ssize_t used = w->used[row], remaining = used - n;
    if (remaining > 0) {
        memmove(totals, totals + n, remaining * sizeof(double));
        memmove(variances, variances + n, remaining * sizeof(double));
    }
    for (Py_ssize_t k = remaining; k < used; k++)
        totals[k] = variances[k] = 0.0;
    w->used[row] = remaining;
}

static int
window_compress_buckets(Window *w)
{
    for (Py_ssize_t row = 0;; row++) {
        if (w->used[row] != w->max_buckets + 1)
            return 0;
        double n1 = (double)(1ULL << row);
        double t0 = w->totals[AT(w, row, 0)], t1 = w->totals[AT(w, row, 1)];
        double v0 = w->variances[AT(w, row, 0)], v1 = w->variances[AT(w, row, 1)];
        double mu1 = t0 / n1, mu2 = t1 / n1;
        double total12 = t0 + t1;
        double temp = n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2);
        double v12 = v0 + v1 + temp;
        if (row + 1 >= w->rows && window_push_row(w) < 0)
            return -1;
        row_insert(w, row + 1, total12, v12);
        row_compress(w, row, 2);
        if (w->used[row + 1] <= w->max_buckets)
            return 0;
    }
}

static void
window_delete_oldest(Window *w)
{
    Py_ssize_t last = w->rows - 1;
    double n = (double)(1ULL << last);
    double u = w->totals[AT(w, last, 0)], v = w->variances[AT(w, last, 0)];
    double mu = u / n;
    w->width -= n;
    w->total -= u;
    double mu_window = w->total / w->width;
    double inc = v + n * w->width * (mu - mu_window) * (mu - mu_window) / (n + w->width);
    w->variance -= inc;
    row_compress(w, last, 1);
    if (w->used[last] == 0)
        w->rows--;
}

/* River's cut test, with what depends only on the window (its width and variance, unchanged during a scan)
   worked out once per scan rather than at every candidate cut: the same values, so the same answers. */
static inline int
window_cut(const Window *w, double delta_prime, double variance_per_value, double n0, double n1,
           double delta_mean)
{
    double m_recip = 1.0 / (n0 - w->min_window_length + 1.0) + 1.0 / (n1 - w->min_window_length + 1.0);
    double epsilon = sqrt(2.0 * m_recip * variance_per_value * delta_prime) + 2.0 / 3.0 * delta_prime * m_recip;
    return fabs(delta_mean) > epsilon;
}

static int
window_detect(Window *w)
{
    int change = 0;
    w->tick++;
    if (w->tick % w->clock == 0 && w->width > w->grace_period) {
        int reduce = 1;
        while (reduce) {
            reduce = 0;
            double n0 = 0.0, n1 = w->width, u0 = 0.0, u1 = w->total;
            double delta_prime = log(2.0 * log(w->width) / w->delta), variance_per_value = w->variance / w->width;
            for (Py_ssize_t row = w->rows - 1; row >= 0; row--) {
                double size = (double)(1ULL << row);
                Py_ssize_t used = w->used[row];
                for (Py_ssize_t k = 0; k < used; k++) {
                    n0 += size;
                    n1 -= size;
                    double t = w->totals[AT(w, row, k)];
                    u0 += t;
                    u1 -= t;
                    if (row == 0 && k == used - 1)
                        goto scanned;
                    double delta_mean = (u0 / n0) - (u1 / n1);
                    if (n1 >= w->min_window_length && n0 >= w->min_window_length && window_cut(w, delta_prime, variance_per_value, n0, n1, delta_mean)) {
                        reduce = 1;
                        change = 1;
                        if (w->width > 0.0) {
                            window_delete_oldest(w);
                            goto scanned;
                        }
                    }
                }
            }
        scanned:;
        }
    }
    if (change)
        w->n_detections++;
    return change;
}

/* Learn one value; 1 if the window dropped its older part (a change), 0 if not, -1 on a memory error. */
static int
window_update(Window *w, double value)
{
    row_insert(w, 0, value, 0.0);
    w->width += 1.0;
    double incremental = 0.0;
    if (w->width > 1.0) {
        double delta_v = value - w->total / (w->width - 1.0);
        incremental = (w->width - 1.0) * delta_v * delta_v / w->width;
    }
    w->variance += incremental;
    w->total += value;
    if (window_compress_buckets(w) < 0)
        return -1;
    return window_detect(w);
}

static PyObject *
Window_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"delta", "clock", "max_buckets", "min_window_length", "grace_period", NULL};
    double delta;
    int clock;
    Py_ssize_t max_buckets = 5;
    int min_window_length = 5, grace_period = 10;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "di|nii", keywords, &delta, &clock, &max_buckets,
                                     &min_window_length, &grace_period))
        return NULL;
    if (clock < 1 || max_buckets < 2) {
        PyErr_SetString(PyExc_ValueError, "clock must be >= 1 and max_buckets >= 2");
        return NULL;
    }
    Window *w = (Window *)type->tp_alloc(type, 0);
    if (w == NULL)
        return NULL;
    w->delta = delta;
    w->clock = clock;
    w->max_buckets = max_buckets;
    w->min_window_length = min_window_length;
    w->grace_period = grace_period;
    if (window_push_row(w) < 0) {
        Py_DECREF(w);
        return PyErr_NoMemory();
    }
    return (PyObject *)w;
}

static void
Window_dealloc(Window *w)
{
    PyMem_Free(w->used);
    PyMem_Free(w->totals);
    PyMem_Free(w->variances);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyObject *
Window_update(Window *w, PyObject *arg)
{
    double value = PyFloat_AsDouble(arg);
    if (value == -1.0 && PyErr_Occurred())
        return NULL;
    int change = window_update(w, value);
    if (change < 0)
        return PyErr_NoMemory();
    return PyBool_FromLong(change);
}

static PyObject *Window_get_width(Window *w, PyObject *unused) { return PyFloat_FromDouble(w->width); }
static PyObject *Window_get_total(Window *w, PyObject *unused) { return PyFloat_FromDouble(w->total); }
static PyObject *Window_get_variance(Window *w, PyObject *unused) { return PyFloat_FromDouble(w->variance); }
static PyObject *Window_get_n_detections(Window *w, PyObject *unused) { return PyLong_FromLong(w->n_detections); }

/* Pickled as (Window, its parameters, its state): the scalars, then each row's buckets. */
static PyObject *
Window_reduce(Window *w, PyObject *unused)
{
    Py_ssize_t width = w->max_buckets + 1;
    PyObject *used = PyBytes_FromStringAndSize((const char *)w->used, w->rows * sizeof(Py_ssize_t));
    PyObject *totals = PyBytes_FromStringAndSize((const char *)w->totals, w->rows * width * sizeof(double));
    PyObject *variances = PyBytes_FromStringAndSize((const char *)w->variances, w->rows * width * sizeof(double));
    PyObject *result = NULL;
    if (used && totals && variances)
        result = Py_BuildValue("O(dinii)(dddiiOOO)", Py_TYPE(w), w->delta, w->clock, w->max_buckets,
                               (int)w->min_window_length, (int)w->grace_period, w->total, w->variance, w->width,
                               w->tick, w->n_detections, used, totals, variances);
    Py_XDECREF(used);
    Py_XDECREF(totals);
    Py_XDECREF(variances);
    return result;
}

static PyObject *
Window_setstate(Window *w, PyObject *state)
{
    Py_buffer used, totals, variances;
    if (!PyArg_ParseTuple(state, "dddiiy*y*y*", &w->total, &w->variance, &w->width, &w->tick,
                          &w->n_detections, &used, &totals, &variances))
        return NULL;
    Py_ssize_t width = w->max_buckets + 1, rows = used.len / (Py_ssize_t)sizeof(Py_ssize_t);
    PyObject *result = NULL;
    if (rows < 1 || used.len != rows * (Py_ssize_t)sizeof(Py_ssize_t)
        || totals.len != rows * width * (Py_ssize_t)sizeof(double) || variances.len != totals.len) {
        PyErr_SetString(PyExc_ValueError, "not the state of a window");
        goto done;
    }
    while (w->capacity < rows)
        if (window_grow(w) < 0) {
            PyErr_NoMemory();
            goto done;
        }
    memcpy(w->used, used.buf, used.len);
    memcpy(w->totals, totals.buf, totals.len);
    memcpy(w->variances, variances.buf, variances.len);
    w->rows = rows;
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&used);
    PyBuffer_Release(&totals);
    PyBuffer_Release(&variances);
    return result;
}

static PyMethodDef Window_methods[] = {
    {"update", (PyCFunction)Window_update, METH_O, "Learn one value; True when the window detected a change."},
    {"get_width", (PyCFunction)Window_get_width, METH_NOARGS, NULL},
    {"get_total", (PyCFunction)Window_get_total, METH_NOARGS, NULL},
    {"get_variance", (PyCFunction)Window_get_variance, METH_NOARGS, NULL},
    {"get_n_detections", (PyCFunction)Window_get_n_detections, METH_NOARGS, NULL},
    {"__reduce__", (PyCFunction)Window_reduce, METH_NOARGS, NULL},
    {"__setstate__", (PyCFunction)Window_setstate, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WindowType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "models._numeric.Window",
    .tp_basicsize = sizeof(Window),
    .tp_dealloc = (destructor)Window_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Window(delta, clock, max_buckets=5, min_window_length=5, grace_period=10): River's ADWIN window.",
    .tp_methods = Window_methods,
    .tp_new = Window_new,
};

/* A window's update: this module's own without a Python call, any other (River's) through its method. */
static int
update_any(PyObject *window, double value)
{
    if (Py_IS_TYPE(window, &WindowType)) {
        int change = window_update((Window *)window, value);
        if (change < 0)
            PyErr_NoMemory();
        return change;
    }
    PyObject *number = PyFloat_FromDouble(value);
    if (number == NULL)
        return -1;
    PyObject *call[2] = {window, number};
    PyObject *result = PyObject_VectorcallMethod(update_name, call, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(number);
    if (result == NULL)
        return -1;
    int change = result == Py_True;
    Py_DECREF(result);
    return change;
}

PyDoc_STRVAR(update_doc, "update(window, value) -> bool\n\nwindow.update(value), for windows of any kind.");

static PyObject *
update(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "update(window, value)");
        return NULL;
    }
    double value = PyFloat_AsDouble(args[1]);
    if (value == -1.0 && PyErr_Occurred())
        return NULL;
    int change = update_any(args[0], value);
    return change < 0 ? NULL : PyBool_FromLong(change);
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
        int hit = update_any(PyList_GET_ITEM(windows, j), xj);
        if (hit < 0)
            goto fail;
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
    if (b[0].itemsize != 8) {
        PyErr_SetString(PyExc_ValueError, "x: expected float64");
        goto done;
    }
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
    {"update", (PyCFunction)(void (*)(void))update, METH_FASTCALL, update_doc},
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
    if (update_name == NULL || PyType_Ready(&WindowType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddObjectRef(m, "Window", (PyObject *)&WindowType) < 0)
        Py_CLEAR(m);
    return m;
}
