/*
 * RFC 8291 message encryption ("aes128gcm", RFC 8188) for a whole batch of Web Push messages,
 * with Python's lock released for the batch.
 *
 * Why this is C: a push worker is one Python process, and what limits it is Python's lock (the
 * GIL), not the cores. Encrypting in Python on `cryptography` takes the lock five times per
 * message (key generation, the public key's bytes, the receiver's key, the HMACs, AES-GCM) around
 * the one step that releases it (the ECDH exchange), and each time the encryption thread takes
 * the lock back it waits for the event loop, which needs the lock for every answer it reads. This
 * file takes the lock once per batch: it reads the batch, releases the lock, does every step of
 * every message in OpenSSL, and takes the lock again to hand the results back. The event loop
 * meanwhile runs on the other core.
 *
 * Every primitive is OpenSSL's (the EVP interfaces of OpenSSL 3): P-256 key generation and ECDH,
 * HMAC-SHA-256 for HKDF, AES-128-GCM, and the random salt. This file only puts them in RFC 8291's
 * order. The pure-Python `encrypt` in push_webpush.py is the reference: the tests check this
 * against it, against RFC 8291's example through it, and decrypt this one's output with
 * `http_ece`, an implementation independent of both.
 *
 * Per message (RFC 8291 section 3.4, RFC 8188 section 2):
 *   a fresh P-256 key pair; ecdh_secret = ECDH(own private key, receiver's public key)
 *   IKM   = HKDF(salt=auth_secret, ikm=ecdh_secret, info="WebPush: info\0" || ua_public || as_public, 32)
 *   CEK   = HKDF(salt=salt, ikm=IKM, info="Content-Encoding: aes128gcm\0", 16)
 *   NONCE = HKDF(salt=salt, ikm=IKM, info="Content-Encoding: nonce\0", 12)
 *   body  = salt(16) || rs(4, 4096) || idlen(1, 65) || as_public(65) || AES-GCM(CEK, NONCE, payload || 0x02) || tag(16)
 * Every key here is 32 bytes or shorter, so HKDF's expand step is one HMAC block: HMAC(PRK, info || 0x01).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define RECORD_SIZE 4096
#define POINT_LEN 65 /* an uncompressed P-256 point: 0x04 || x || y */
#define AUTH_LEN 16
#define SALT_LEN 16
#define HEADER_LEN (SALT_LEN + 4 + 1 + POINT_LEN)
#define TAG_LEN 16
#define HASH_LEN 32
#define KEY_INFO "WebPush: info\0"
#define KEY_INFO_LEN 14
/* The info strings of RFC 8188 with HKDF's one-block counter (0x01) already appended. */
static const unsigned char CEK_INFO[] = "Content-Encoding: aes128gcm\0\1";
static const unsigned char NONCE_INFO[] = "Content-Encoding: nonce\0\1";
#define CEK_INFO_LEN (sizeof(CEK_INFO) - 1)
#define NONCE_INFO_LEN (sizeof(NONCE_INFO) - 1)

/* One message of the batch: pointers into the caller's bytes objects. They stay valid while the
 * lock is released: the batch is copied into a tuple of its own first (nobody can take an item
 * out of it), its items are tuples and bytes, and neither ever changes. */
typedef struct {
    const unsigned char *payload;
    size_t payload_len;
    const unsigned char *receiver; /* POINT_LEN bytes */
    const unsigned char *auth;     /* AUTH_LEN bytes */
    unsigned char *body;           /* malloc'ed: HEADER_LEN + payload_len + 1 + TAG_LEN */
    size_t body_len;
    const char *error; /* why this message was not encrypted, or NULL */
} Message;

/* What every message of a batch reuses: made once per batch, since OpenSSL 3 looks algorithms
 * up by name and that lookup costs more than a step on 32 bytes. */
typedef struct {
    EVP_PKEY_CTX *keygen;   /* P-256 key generation */
    EVP_PKEY_CTX *importer; /* receivers' public keys from their bytes */
    EVP_MAC *mac;
    EVP_MAC_CTX *hmac; /* HMAC-SHA-256, keyed again for each use */
    EVP_CIPHER *aes;
    EVP_CIPHER_CTX *cipher;
} Tools;

static void tools_free(Tools *tools) {
    EVP_PKEY_CTX_free(tools->keygen);
    EVP_PKEY_CTX_free(tools->importer);
    EVP_MAC_CTX_free(tools->hmac);
    EVP_MAC_free(tools->mac);
    EVP_CIPHER_CTX_free(tools->cipher);
    EVP_CIPHER_free(tools->aes);
}

static int tools_make(Tools *tools) {
    OSSL_PARAM digest[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    memset(tools, 0, sizeof(*tools));
    tools->keygen = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    tools->importer = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    tools->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    tools->hmac = tools->mac ? EVP_MAC_CTX_new(tools->mac) : NULL;
    tools->aes = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    tools->cipher = EVP_CIPHER_CTX_new();
    if (!tools->keygen || !tools->importer || !tools->hmac || !tools->aes || !tools->cipher
        || EVP_PKEY_keygen_init(tools->keygen) != 1
        || EVP_PKEY_CTX_set_group_name(tools->keygen, "P-256") != 1
        || EVP_PKEY_fromdata_init(tools->importer) != 1
        || EVP_MAC_CTX_set_params(tools->hmac, digest) != 1) {
        tools_free(tools);
        return 0;
    }
    return 1;
}

static int hmac_sha256(Tools *tools, const unsigned char *key, size_t key_len, const unsigned char *data,
                       size_t data_len, unsigned char out[HASH_LEN]) {
    size_t out_len = 0;
    return EVP_MAC_init(tools->hmac, key, key_len, NULL) == 1
        && EVP_MAC_update(tools->hmac, data, data_len) == 1
        && EVP_MAC_final(tools->hmac, out, &out_len, HASH_LEN) == 1 && out_len == HASH_LEN;
}

/* The receiver's public key; NULL when the bytes are not a point on P-256 (OpenSSL's import
 * decodes the point and checks that it lies on the curve). */
static EVP_PKEY *receiver_key(Tools *tools, const unsigned char *point) {
    EVP_PKEY *key = NULL;
    OSSL_PARAM params[3] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, POINT_LEN),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_PKEY_fromdata(tools->importer, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        return NULL;
    return key;
}

static int ecdh(EVP_PKEY *own, EVP_PKEY *peer, unsigned char secret[HASH_LEN]) {
    size_t secret_len = HASH_LEN;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, own, NULL);
    /* The peer is not validated again here: its import already checked that the point is on
     * the curve, and P-256's cofactor is 1, so that is the whole check. */
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer_ex(ctx, peer, 0) == 1
        && EVP_PKEY_derive(ctx, secret, &secret_len) == 1 && secret_len == HASH_LEN;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* Encrypts one message into its body; returns why not, or NULL. Runs without Python's lock. */
static const char *seal(Tools *tools, Message *message) {
    unsigned char sender[POINT_LEN], secret[HASH_LEN], prk[HASH_LEN], ikm[HASH_LEN], block[HASH_LEN];
    unsigned char cek[16], nonce[12];
    unsigned char key_info[KEY_INFO_LEN + 2 * POINT_LEN + 1];
    unsigned char *salt = message->body, *record = message->body + HEADER_LEN;
    const char *error = "encryption failed in OpenSSL";
    EVP_PKEY *own = NULL, *peer = NULL;
    size_t sender_len = 0;
    int written = 0, more = 0, last = 0;
    static const unsigned char delimiter = 2; /* the last record's padding delimiter, no padding */

    peer = receiver_key(tools, message->receiver);
    if (peer == NULL) {
        error = "the subscription's public key is not a point on P-256";
        goto done;
    }
    if (EVP_PKEY_generate(tools->keygen, &own) != 1
        || EVP_PKEY_get_octet_string_param(own, OSSL_PKEY_PARAM_PUB_KEY, sender, POINT_LEN, &sender_len) != 1
        || sender_len != POINT_LEN || !ecdh(own, peer, secret))
        goto done;

    memcpy(key_info, KEY_INFO, KEY_INFO_LEN);
    memcpy(key_info + KEY_INFO_LEN, message->receiver, POINT_LEN);
    memcpy(key_info + KEY_INFO_LEN + POINT_LEN, sender, POINT_LEN);
    key_info[sizeof(key_info) - 1] = 1;
    if (!hmac_sha256(tools, message->auth, AUTH_LEN, secret, HASH_LEN, prk)
        || !hmac_sha256(tools, prk, HASH_LEN, key_info, sizeof(key_info), ikm)
        || RAND_bytes(salt, SALT_LEN) != 1
        || !hmac_sha256(tools, salt, SALT_LEN, ikm, HASH_LEN, prk)
        || !hmac_sha256(tools, prk, HASH_LEN, CEK_INFO, CEK_INFO_LEN, block))
        goto done;
    memcpy(cek, block, sizeof(cek));
    if (!hmac_sha256(tools, prk, HASH_LEN, NONCE_INFO, NONCE_INFO_LEN, block))
        goto done;
    memcpy(nonce, block, sizeof(nonce));

    /* The header: salt (written above), the record size, the key id's length, the key id. */
    salt[SALT_LEN] = (RECORD_SIZE >> 24) & 0xff;
    salt[SALT_LEN + 1] = (RECORD_SIZE >> 16) & 0xff;
    salt[SALT_LEN + 2] = (RECORD_SIZE >> 8) & 0xff;
    salt[SALT_LEN + 3] = RECORD_SIZE & 0xff;
    salt[SALT_LEN + 4] = POINT_LEN;
    memcpy(salt + SALT_LEN + 5, sender, POINT_LEN);

    if (EVP_EncryptInit_ex2(tools->cipher, tools->aes, cek, nonce, NULL) != 1
        || EVP_EncryptUpdate(tools->cipher, record, &written, message->payload, (int)message->payload_len) != 1
        || EVP_EncryptUpdate(tools->cipher, record + written, &more, &delimiter, 1) != 1
        || EVP_EncryptFinal_ex(tools->cipher, record + written + more, &last) != 1
        || (size_t)(written + more + last) != message->payload_len + 1
        || EVP_CIPHER_CTX_ctrl(tools->cipher, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, record + message->payload_len + 1) != 1)
        goto done;
    error = NULL;

done:
    if (error != NULL)
        ERR_clear_error(); /* this thread's OpenSSL error queue: nothing is left for the next call */
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(prk, sizeof(prk));
    OPENSSL_cleanse(ikm, sizeof(ikm));
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(cek, sizeof(cek));
    EVP_PKEY_free(own);
    EVP_PKEY_free(peer);
    return error;
}

/* The bytes of item `index` of a message tuple, or NULL with why not. */
static const unsigned char *bytes_of(PyObject *item, Py_ssize_t index, size_t *length, const char **error) {
    PyObject *value = PyTuple_GET_ITEM(item, index);
    if (!PyBytes_Check(value)) {
        *error = "a message part is not bytes";
        return NULL;
    }
    *length = (size_t)PyBytes_GET_SIZE(value);
    return (const unsigned char *)PyBytes_AS_STRING(value);
}

static void read_message(PyObject *item, Message *message) {
    size_t receiver_len = 0, auth_len = 0;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3) {
        message->error = "a message is not a (payload, public key, auth secret) tuple";
        return;
    }
    message->payload = bytes_of(item, 0, &message->payload_len, &message->error);
    message->receiver = bytes_of(item, 1, &receiver_len, &message->error);
    message->auth = bytes_of(item, 2, &auth_len, &message->error);
    if (message->error != NULL)
        return;
    if (receiver_len != POINT_LEN || message->receiver[0] != 4)
        message->error = "the subscription's public key is not an uncompressed P-256 point (65 bytes)";
    else if (auth_len != AUTH_LEN)
        message->error = "the subscription's auth secret is not 16 bytes";
    else if (message->payload_len + 1 + TAG_LEN > RECORD_SIZE)
        message->error = "the payload does not fit one record of 4096 bytes";
}

PyDoc_STRVAR(seal_many_doc,
             "seal_many(messages, /)\n--\n\n"
             "Encrypt each (payload, receiver's uncompressed P-256 public key, 16-byte auth secret) as\n"
             "RFC 8291 aes128gcm, one record, a fresh key pair and salt each. Returns one item per\n"
             "message: the body (bytes), or why it could not be encrypted (str). Python's lock is\n"
             "released while the batch is encrypted.");

static PyObject *seal_many(PyObject *module, PyObject *messages) {
    PyObject *items = PySequence_Tuple(messages);
    PyObject *result = NULL;
    Message *batch = NULL;
    Py_ssize_t count, i;
    Tools tools;
    (void)module;
    if (items == NULL)
        return NULL;
    count = PyTuple_GET_SIZE(items);
    batch = PyMem_Calloc(count ? (size_t)count : 1, sizeof(Message));
    if (batch == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    for (i = 0; i < count; i++) {
        Message *message = &batch[i];
        read_message(PyTuple_GET_ITEM(items, i), message);
        if (message->error != NULL)
            continue;
        message->body_len = HEADER_LEN + message->payload_len + 1 + TAG_LEN;
        message->body = PyMem_RawMalloc(message->body_len);
        if (message->body == NULL) {
            PyErr_NoMemory();
            goto out;
        }
    }
    if (!tools_make(&tools)) {
        ERR_clear_error();
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL has no P-256, HMAC-SHA-256 or AES-128-GCM");
        goto out;
    }
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < count; i++)
        if (batch[i].error == NULL)
            batch[i].error = seal(&tools, &batch[i]);
    tools_free(&tools);
    ERR_clear_error(); /* nothing of this batch is left on this thread's OpenSSL error queue */
    Py_END_ALLOW_THREADS

    result = PyList_New(count);
    if (result == NULL)
        goto out;
    for (i = 0; i < count; i++) {
        PyObject *item = batch[i].error != NULL
            ? PyUnicode_FromString(batch[i].error)
            : PyBytes_FromStringAndSize((const char *)batch[i].body, (Py_ssize_t)batch[i].body_len);
        if (item == NULL) {
            Py_CLEAR(result);
            goto out;
        }
        PyList_SET_ITEM(result, i, item);
    }

out:
    if (batch != NULL) {
        for (i = 0; i < count; i++)
            PyMem_RawFree(batch[i].body);
        PyMem_Free(batch);
    }
    Py_DECREF(items);
    return result;
}

static PyMethodDef methods[] = {
    {"seal_many", (PyCFunction)seal_many, METH_O, seal_many_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_webpush_seal",
    .m_doc = "RFC 8291 Web Push encryption of a batch, in OpenSSL, outside Python's lock.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__webpush_seal(void) { return PyModule_Create(&module); }
