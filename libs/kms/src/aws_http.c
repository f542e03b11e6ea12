/* SPDX-License-Identifier: MIT */
/*
 * The aws provider's HTTP transport: a pool of curl easy handles. A calling thread takes an idle
 * handle (or makes one), sends, reads the response into the handle's fixed buffer and gives the
 * handle back, so a handle's open connection (and TLS session) serves the next call of any
 * thread: a warm call costs no handshake. Each response is capped at ADI_KMS__BODY_MAX bytes and
 * its buffer is wiped when the handle returns to the pool (KMS answers carry data keys).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "adi/log.h"
#include "kms_int.h"

/* curl write callback: appends to the handle's buffer, aborting past ADI_KMS__BODY_MAX. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    adi_kms__conn_t *c = user;
    size_t n = size * nmemb;
    if (n > ADI_KMS__BODY_MAX - c->len) {
        c->overflow = true;
        return 0;
    }
    memcpy(c->body + c->len, data, n);
    c->len += n;
    return n;
}

void adi_kms__http_init(adi_kms__http_t *h)
{
    pthread_mutex_init(&h->mu, NULL);
    h->idle = NULL;
}

void adi_kms__http_dispose(adi_kms__http_t *h)
{
    adi_kms__conn_t *c = h->idle;
    while (c != NULL) {
        adi_kms__conn_t *next = c->next;
        curl_easy_cleanup(c->curl);
        OPENSSL_cleanse(c->body, ADI_KMS__BODY_MAX + 1);
        free(c->body);
        free(c);
        c = next;
    }
    h->idle = NULL;
    pthread_mutex_destroy(&h->mu);
}

adi_kms__conn_t *adi_kms__http_take(adi_kms__http_t *h)
{
    pthread_mutex_lock(&h->mu);
    adi_kms__conn_t *c = h->idle;
    if (c != NULL)
        h->idle = c->next;
    pthread_mutex_unlock(&h->mu);
    if (c != NULL) {
        c->next = NULL;
        return c;
    }
    c = adi_xcalloc(1, sizeof(*c));
    c->body = adi_xmalloc(ADI_KMS__BODY_MAX + 1);
    c->curl = curl_easy_init();
    if (c->curl == NULL)
        adi__oom(sizeof(void *), __FILE__, __LINE__);
    return c;
}

void adi_kms__http_give(adi_kms__http_t *h, adi_kms__conn_t *c)
{
    OPENSSL_cleanse(c->body, c->len + 1);
    c->len = 0;
    c->overflow = false;
    pthread_mutex_lock(&h->mu);
    c->next = h->idle;
    h->idle = c;
    pthread_mutex_unlock(&h->mu);
}

void adi_kms__slist_free_wiped(struct curl_slist *l)
{
    for (struct curl_slist *n = l; n != NULL; n = n->next)
        OPENSSL_cleanse(n->data, strlen(n->data));
    curl_slist_free_all(l);
}

adi_err adi_kms__http_do(adi_kms__conn_t *c, const adi_kms__request_t *req, long *status,
                         int *curl_code)
{
    *status = 0;
    *curl_code = CURLE_OK;
    c->len = 0;
    c->overflow = false;
    c->body[0] = '\0';

    CURL *h = c->curl;
    /* Reset keeps the handle's open connections, DNS and TLS session caches. */
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms > 0 ? req->connect_timeout_ms : req->timeout_ms);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "adinsights-vault");
    if (req->no_proxy)
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, req->headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    }

    CURLcode cc = curl_easy_perform(h);
    c->body[c->len] = '\0';
    if (c->overflow)
        return ADI_TOO_LARGE;
    if (cc != CURLE_OK) {
        *curl_code = (int)cc;
        return ADI_UNAVAILABLE;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    long connects = 0;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    if (connects > 0)
        ADI_LOG(NULL, ADI_LOG_DEBUG, "kms.connect", "new connection for %s %s", req->method,
                req->url);
    return ADI_OK;
}
