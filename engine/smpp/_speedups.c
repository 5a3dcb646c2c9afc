/* The deliver_sm fast path of engine/smpp/fastpath.py, compiled.
 *
 * deliver_sm(cls, buf, pos, end, seq, status) decodes the body buf[pos:end] of a
 * deliver_sm the way engine/smpp/fastpath.py's pure-Python deliver_sm does, and
 * returns cls(...) (the DeliverSm Struct, called with keywords), or None for
 * anything unusual (the general decoder then decodes it and names what is wrong).
 * It is an accelerator only: the pure-Python function is the reference, the
 * tests check both give what the general decoder gives, and Volley runs
 * without this module when it could not be built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define SERVICE_TYPE 6
#define ADDR_LEN 21
#define MESSAGE_ID 65
#define TLV_RECEIPTED_ID 0x001E
#define TLV_STATE 0x0427
#define TLV_NETWORK_ERROR 0x0423
#define TLV_PAYLOAD 0x0424

enum {
    K_SEQUENCE, K_STATUS, K_SERVICE_TYPE, K_SOURCE_TON, K_SOURCE_NPI, K_SOURCE_ADDR,
    K_DEST_TON, K_DEST_NPI, K_DESTINATION_ADDR, K_ESM_CLASS, K_PROTOCOL_ID, K_PRIORITY,
    K_REGISTERED, K_REPLACE, K_DATA_CODING, K_DEFAULT_MSG_ID, K_SHORT_MESSAGE,
    K_RECEIPTED_ID, K_MESSAGE_STATE, K_NETWORK_ERROR, K_PAYLOAD, K_COUNT
};

static const char *NAMES[K_COUNT] = {
    "sequence", "status", "service_type", "source_addr_ton", "source_addr_npi",
    "source_addr", "dest_addr_ton", "dest_addr_npi", "destination_addr", "esm_class",
    "protocol_id", "priority_flag", "registered_delivery", "replace_if_present_flag",
    "data_coding", "sm_default_msg_id", "short_message", "receipted_message_id",
    "message_state", "network_error_code", "message_payload",
};

static PyObject *kwnames;  /* a tuple of the NAMES, built once */

/* The offset of the first NUL in buf[from:min(end, from+limit)], or -1. */
static Py_ssize_t
find_nul(const unsigned char *buf, Py_ssize_t from, Py_ssize_t end, Py_ssize_t limit)
{
    Py_ssize_t stop = from + limit < end ? from + limit : end;
    if (from >= stop) {
        return -1;
    }
    const unsigned char *hit = memchr(buf + from, 0, (size_t)(stop - from));
    return hit == NULL ? -1 : hit - buf;
}

static PyObject *
latin1(const unsigned char *buf, Py_ssize_t from, Py_ssize_t to)
{
    return PyUnicode_DecodeLatin1((const char *)buf + from, to - from, NULL);
}

static PyObject *
deliver_sm(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "deliver_sm(cls, buf: bytes, pos, end, seq, status)");
        return NULL;
    }
    PyObject *cls = args[0];
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[1]);
    Py_ssize_t pos = PyLong_AsSsize_t(args[2]);
    Py_ssize_t end = PyLong_AsSsize_t(args[3]);
    if ((pos == -1 || end == -1) && PyErr_Occurred()) {
        return NULL;
    }
    if (pos < 0 || end > size || pos > end) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n1 = find_nul(buf, pos, end, SERVICE_TYPE);
    if (n1 < 0) Py_RETURN_NONE;
    Py_ssize_t n2 = find_nul(buf, n1 + 3, end, ADDR_LEN);
    if (n2 < 0) Py_RETURN_NONE;
    Py_ssize_t n3 = find_nul(buf, n2 + 3, end, ADDR_LEN);
    if (n3 < 0 || n3 + 6 > end || buf[n3 + 4] || buf[n3 + 5]) Py_RETURN_NONE;
    Py_ssize_t sm_start = n3 + 11;
    if (sm_start > end) Py_RETURN_NONE;
    Py_ssize_t sm_end = sm_start + buf[sm_start - 1];
    if (sm_end > end) Py_RETURN_NONE;

    Py_ssize_t rid_from = -1, rid_to = -1, nec_from = -1, nec_to = -1;
    Py_ssize_t pay_from = -1, pay_to = -1;
    int state = -1;
    Py_ssize_t at = sm_end;
    while (at < end) {
        if (at + 4 > end) Py_RETURN_NONE;
        unsigned tag = (unsigned)buf[at] << 8 | buf[at + 1];
        Py_ssize_t start = at + 4;
        at = start + ((Py_ssize_t)buf[at + 2] << 8 | buf[at + 3]);
        if (at > end) Py_RETURN_NONE;
        if (tag == TLV_RECEIPTED_ID) {
            Py_ssize_t nul = find_nul(buf, start, at, at - start);
            if (nul < 0 || nul - start >= MESSAGE_ID) Py_RETURN_NONE;
            rid_from = start;
            rid_to = nul;
        } else if (tag == TLV_STATE && at - start == 1) {
            state = buf[start];
        } else if (tag == TLV_NETWORK_ERROR) {
            nec_from = start;
            nec_to = at;
        } else if (tag == TLV_PAYLOAD) {
            pay_from = start;
            pay_to = at;
        } else {
            Py_RETURN_NONE;  /* SAR, references, anything else: the general decoder */
        }
    }
    if (pay_from >= 0 && sm_end > sm_start) Py_RETURN_NONE;

    PyObject *values[1 + K_COUNT] = {NULL};
    PyObject **v = values + 1;
    v[K_SEQUENCE] = Py_NewRef(args[4]);
    v[K_STATUS] = Py_NewRef(args[5]);
    v[K_SERVICE_TYPE] = latin1(buf, pos, n1);
    v[K_SOURCE_TON] = PyLong_FromLong(buf[n1 + 1]);
    v[K_SOURCE_NPI] = PyLong_FromLong(buf[n1 + 2]);
    v[K_SOURCE_ADDR] = latin1(buf, n1 + 3, n2);
    v[K_DEST_TON] = PyLong_FromLong(buf[n2 + 1]);
    v[K_DEST_NPI] = PyLong_FromLong(buf[n2 + 2]);
    v[K_DESTINATION_ADDR] = latin1(buf, n2 + 3, n3);
    v[K_ESM_CLASS] = PyLong_FromLong(buf[n3 + 1]);
    v[K_PROTOCOL_ID] = PyLong_FromLong(buf[n3 + 2]);
    v[K_PRIORITY] = PyLong_FromLong(buf[n3 + 3]);
    v[K_REGISTERED] = PyLong_FromLong(buf[n3 + 6]);
    v[K_REPLACE] = PyLong_FromLong(buf[n3 + 7]);
    v[K_DATA_CODING] = PyLong_FromLong(buf[n3 + 8]);
    v[K_DEFAULT_MSG_ID] = PyLong_FromLong(buf[n3 + 9]);
    v[K_SHORT_MESSAGE] = PyBytes_FromStringAndSize((const char *)buf + sm_start, sm_end - sm_start);
    v[K_RECEIPTED_ID] = rid_from >= 0 ? latin1(buf, rid_from, rid_to) : Py_NewRef(Py_None);
    v[K_MESSAGE_STATE] = state >= 0 ? PyLong_FromLong(state) : Py_NewRef(Py_None);
    v[K_NETWORK_ERROR] = nec_from >= 0
        ? PyBytes_FromStringAndSize((const char *)buf + nec_from, nec_to - nec_from)
        : Py_NewRef(Py_None);
    v[K_PAYLOAD] = pay_from >= 0
        ? PyBytes_FromStringAndSize((const char *)buf + pay_from, pay_to - pay_from)
        : Py_NewRef(Py_None);

    PyObject *result = NULL;
    for (int i = 0; i < K_COUNT; i++) {
        if (v[i] == NULL) goto done;
    }
    result = PyObject_Vectorcall(cls, v, 0 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
done:
    for (int i = 0; i < K_COUNT; i++) {
        Py_XDECREF(v[i]);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"deliver_sm", (PyCFunction)(void (*)(void))deliver_sm, METH_FASTCALL,
     "deliver_sm(cls, buf, pos, end, seq, status): a cls (DeliverSm), or None to decode it "
     "the general way"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "engine.smpp._speedups",
    "Compiled fast paths of engine/smpp/fastpath.py (optional).", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    kwnames = PyTuple_New(K_COUNT);
    if (kwnames == NULL) {
        return NULL;
    }
    for (int i = 0; i < K_COUNT; i++) {
        PyObject *name = PyUnicode_InternFromString(NAMES[i]);
        if (name == NULL) {
            Py_CLEAR(kwnames);
            return NULL;
        }
        PyTuple_SET_ITEM(kwnames, i, name);
    }
    return PyModule_Create(&module);
}
