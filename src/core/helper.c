/*
 * helper.c - a helper thread that runs one job at a time beside its caller:
 * a report worker hands it half of a scan and does the other half itself
 * (src/query). The job is started with umg_helper_run and waited for with
 * umg_helper_wait; nothing is queued.
 */
#include <pthread.h>
#include <stdio.h>

#include "umg_core.h"

struct umg_helper_s {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a job arrived, one ended, or stop */
    pthread_t thread;
    void (*fn)(void *);
    void *arg;
    int busy; /* a job was handed over and has not ended */
    int stopping;
};

void umg_thread_name(const char *name)
{
    char n[16];
    snprintf(n, sizeof(n), "%s", name);
    (void)pthread_setname_np(pthread_self(), n);
}

static void *helper_main(void *arg)
{
    umg_helper_t *h = arg;
    umg_thread_name("umg-helper");
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (h->fn == NULL && !h->stopping) {
            pthread_cond_wait(&h->cv, &h->mu);
        }
        if (h->fn == NULL) {
            break;
        }
        void (*fn)(void *) = h->fn;
        void *fa = h->arg;
        h->fn = NULL;
        pthread_mutex_unlock(&h->mu);
        fn(fa);
        pthread_mutex_lock(&h->mu);
        h->busy = 0;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int umg_helper_new(umg_helper_t **out)
{
    umg_helper_t *h = umg_calloc(1, sizeof(*h));
    if (h == NULL) {
        return UMG_ENOMEM;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, helper_main, h) != 0) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        umg_free(h);
        return UMG_ENOMEM;
    }
    *out = h;
    return UMG_OK;
}

int umg_helper_run(umg_helper_t *h, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&h->mu);
    int rc = h->busy || h->stopping ? UMG_EFULL : UMG_OK;
    if (rc == UMG_OK) {
        h->fn = fn;
        h->arg = arg;
        h->busy = 1;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

void umg_helper_wait(umg_helper_t *h)
{
    pthread_mutex_lock(&h->mu);
    while (h->busy) {
        pthread_cond_wait(&h->cv, &h->mu);
    }
    pthread_mutex_unlock(&h->mu);
}

/* The query engine's form of the two calls (umg_query_input_t.beside and .wait). */
int umg_helper_beside(void *h, void (*fn)(void *), void *arg)
{
    return umg_helper_run(h, fn, arg);
}

void umg_helper_join(void *h)
{
    umg_helper_wait(h);
}

void umg_helper_free(umg_helper_t *h)
{
    if (h == NULL) {
        return;
    }
    pthread_mutex_lock(&h->mu);
    while (h->busy) {
        pthread_cond_wait(&h->cv, &h->mu);
    }
    h->stopping = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    umg_free(h);
}
