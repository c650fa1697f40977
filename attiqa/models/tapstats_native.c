/* The tap statistics' native kernel (session 35; issues #20 and #15): per-channel mean and unbiased std over
 * the positions of a contiguous (N, HW, C) float32 map, in ONE read of the map and no write but the (N, C)
 * results. Torch has no read-only reduction over a strided dimension with accurate accumulation, so its path
 * (attiqa/models/backbones.py, spatial_mean_std) writes the squared deviations; this is that arithmetic
 * without the write.
 *
 * Numerics: each value minus a per-channel reference (the channel's value at the first position) is summed,
 * and squared and summed, in float64; mean = ref + S/HW, var = (Q - S^2/HW) / (HW - 1). The shift removes the
 * cancellation of E[x^2] - E[x]^2 (a constant channel gives S = Q = 0: std exactly 0), and float64 sums of
 * up to ~10^6 terms are exact to ~1e-10, far below the float32 result's rounding.
 *
 * Plain C and the CPython API only (no torch or numpy headers): the caller passes data pointers
 * (tensor.data_ptr()) and sizes and guarantees the layout. The GIL is released while it runs. On x86-64
 * with GCC the kernel is compiled three times (AVX-512 from GCC 12 on, AVX2 + FMA, and the baseline) and the
 * loader picks one for the CPU it runs on.
 *
 * Threads (session 36): the work units run on torch's OWN OpenMP team, through the GOMP_parallel entry of the
 * runtime libtorch_cpu is bound to (found among the loaded objects and opened with RTLD_NOLOAD: this file
 * never links or loads an OpenMP runtime). Between the network's parallel regions torch's OpenMP threads spin
 * waiting for the next one; a second set of threads (session 35's pthreads, created per call) competed with
 * them for the cores and lost end to end at 2 threads, while the same team takes the units at once. Where
 * no such runtime is found (a torch without OpenMP, no dl_iterate_phdr) or the caller asks for it, the units
 * go to pthreads created per call. The units and their arithmetic do not depend on the dispatch or on the
 * thread count: the results are bit-identical either way.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* dl_iterate_phdr, dladdr, RTLD_NOLOAD */
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <dlfcn.h>
#include <link.h>
#define TAPSTATS_FIND_OPENMP 1
#endif

/* Bumped whenever the kernel's interface or arithmetic changes: Python refuses a stale build. */
#define TAPSTATS_VERSION 3

/* The AVX-512 clone (x86-64-v4; GCC 12 names it both in target_clones and in __builtin_cpu_supports — GCC 11
 * refuses both, bug 101696, and the optional extension would then not be built at all): session 61, 1.8x the AVX2 clone's statistics alone on an AMD
 * EPYC with AVX-512 and the same bits (each channel's sums run in the same order at any vector width). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && __GNUC__ >= 12
#define TAPSTATS_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=haswell", "default")))
#define TAPSTATS_AVX512 1
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define TAPSTATS_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define TAPSTATS_CLONES
#endif

/* Sums over `hw` rows (row stride `c` floats) of `nc` channels starting at `x`: s[k] = sum(x - ref[k]),
 * q[k] = sum((x - ref[k])^2), two rows per step (half the accumulator loads and stores). */
TAPSTATS_CLONES
static void shifted_sums(const float *x, int64_t hw, int64_t c, int64_t nc, const double *ref, double *s,
                         double *q) {
    int64_t r = 0;
    for (; r + 1 < hw; r += 2) {
        const float *a = x + r * c, *b = a + c;
        for (int64_t k = 0; k < nc; k++) {
            double da = (double)a[k] - ref[k], db = (double)b[k] - ref[k];
            s[k] += da + db;
            q[k] += da * da + db * db;
        }
    }
    if (r < hw) {
        const float *a = x + r * c;
        for (int64_t k = 0; k < nc; k++) {
            double da = (double)a[k] - ref[k];
            s[k] += da;
            q[k] += da * da;
        }
    }
}

typedef struct {
    const float *x;
    float *mean, *std;
    int64_t hw, c, slices, slice; /* `slices` channel ranges of `slice` channels per map */
    int64_t first, last;          /* this thread's units: unit u = map u / slices, range u % slices */
    double *work;                 /* 3 * slice doubles */
    int failed;
} Job;

static void run_units(Job *j) {
    double *ref = j->work, *s = ref + j->slice, *q = s + j->slice;
    for (int64_t u = j->first; u < j->last; u++) {
        int64_t i = u / j->slices, c0 = (u % j->slices) * j->slice;
        int64_t nc = j->c - c0 < j->slice ? j->c - c0 : j->slice;
        const float *x = j->x + i * j->hw * j->c + c0;
        for (int64_t k = 0; k < nc; k++) {
            double v = x[k];
            ref[k] = isfinite(v) ? v : 0.0; /* an infinite reference would turn every sum into NaN */
            s[k] = 0.0;
            q[k] = 0.0;
        }
        shifted_sums(x, j->hw, j->c, nc, ref, s, q);
        double n = (double)j->hw, dof = j->hw > 1 ? n - 1.0 : 1.0;
        for (int64_t k = 0; k < nc; k++) {
            double var = (q[k] - s[k] * (s[k] / n)) / dof;
            j->mean[i * j->c + c0 + k] = (float)(ref[k] + s[k] / n);
            /* rounding can leave a tiny negative; NaN passes through (as torch's std does) */
            j->std[i * j->c + c0 + k] = (float)sqrt(var < 0.0 ? 0.0 : var);
        }
    }
}

static void *thread_main(void *arg) {
    run_units((Job *)arg);
    return NULL;
}

/* ---- torch's OpenMP runtime: GOMP_parallel (libgomp's, and LLVM libomp's compatibility entry) ---- */

typedef void (*gomp_parallel_t)(void (*)(void *), void *, unsigned, unsigned);
typedef int (*omp_int_t)(void);

static struct {
    int looked;
    gomp_parallel_t parallel;
    omp_int_t thread_num, num_threads;
    char path[4096]; /* the runtime's file, for runtime() */
} omp;

#ifdef TAPSTATS_FIND_OPENMP
/* dl_iterate_phdr callback: the path of the loaded torch library whose OpenMP binding is torch's. */
static int find_torch(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    const char *name = info->dlpi_name, *slash = strrchr(name, '/'), *base = slash ? slash + 1 : name;
    /* libtorch_cpu holds ATen's parallel_for (libtorch: older single-library builds) */
    if (!strncmp(base, "libtorch_cpu.", 13) || (!strncmp(base, "libtorch.", 9) && !((char *)data)[0])) {
        strncpy((char *)data, name, sizeof omp.path - 1);
        return !strncmp(base, "libtorch_cpu.", 13);
    }
    return 0;
}
#endif

/* Once, with the GIL held: GOMP_parallel as torch's libtorch_cpu resolves it (dlsym on its handle searches
 * it and its dependencies, in its own order), and omp_get_thread_num / omp_get_num_threads from the same
 * file. */
static void find_openmp(void) {
    if (omp.looked)
        return;
    omp.looked = 1;
#ifdef TAPSTATS_FIND_OPENMP
    char torch_lib[sizeof omp.path] = {0};
    dl_iterate_phdr(find_torch, torch_lib);
    if (!torch_lib[0])
        return;
    void *torch = dlopen(torch_lib, RTLD_NOLOAD | RTLD_LAZY); /* already loaded: a handle, never a load */
    void *sym = torch ? dlsym(torch, "GOMP_parallel") : NULL;
    Dl_info where;
    if (!sym || !dladdr(sym, &where) || !where.dli_fname)
        return;
    void *rt = dlopen(where.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
    void *num = rt ? dlsym(rt, "omp_get_thread_num") : NULL;
    void *team = rt ? dlsym(rt, "omp_get_num_threads") : NULL;
    if (!num || !team)
        return;
    /* handles kept open: the runtime stays loaded as long as torch does */
    *(void **)&omp.parallel = sym;
    *(void **)&omp.thread_num = num;
    *(void **)&omp.num_threads = team;
    strncpy(omp.path, where.dli_fname, sizeof omp.path - 1);
#endif
}

typedef struct {
    Job *jobs;
    int nt;
    int64_t units;
} Team;

/* One thread of torch's team: its share of the units, split over the team actually formed (never larger than
 * asked; smaller if the runtime limits it, e.g. inside another parallel region). */
static void omp_body(void *arg) {
    Team *tm = arg;
    int size = omp.num_threads(), t = omp.thread_num();
    if (size > tm->nt)
        size = tm->nt;
    if (t >= size)
        return;
    Job j = tm->jobs[t];
    j.first = tm->units * t / size;
    j.last = tm->units * (t + 1) / size;
    run_units(&j);
}

/* mean_std(x, n, hw, c, mean, std, threads, openmp): x (n, hw, c) float32 contiguous; mean, std (n, c)
 * float32; openmp: 1 = torch's OpenMP team where found (else pthreads), 0 = pthreads. */
static PyObject *mean_std(PyObject *self, PyObject *args) {
    unsigned long long px, pm, ps;
    long long n, hw, c;
    int threads, use_openmp;
    (void)self;
    if (!PyArg_ParseTuple(args, "KLLLKKip", &px, &n, &hw, &c, &pm, &ps, &threads, &use_openmp))
        return NULL;
    if (n < 1 || hw < 1 || c < 1 || !px || !pm || !ps) {
        PyErr_SetString(PyExc_ValueError, "mean_std: empty map or null pointer");
        return NULL;
    }
    if (threads < 1)
        threads = 1;
    /* Units of work: whole maps, or, with fewer maps than threads, channel ranges of >= 16 channels (a
     * multiple of 8: whole vectors and cache lines). */
    int64_t slices = 1;
    if (n < threads) {
        slices = (threads + n - 1) / n;
        int64_t most = c / 16 > 0 ? c / 16 : 1;
        slices = slices < most ? slices : most;
    }
    int64_t slice = (c + slices - 1) / slices;
    slice = slices > 1 ? (slice + 7) / 8 * 8 : slice;
    slices = (c + slice - 1) / slice;
    int64_t units = n * slices;
    int nt = units < threads ? (int)units : threads;

    Job *jobs = calloc((size_t)nt, sizeof(Job));
    double *work = malloc((size_t)nt * 3 * (size_t)slice * sizeof(double));
    pthread_t *tids = calloc((size_t)nt, sizeof(pthread_t));
    if (!jobs || !work || !tids) {
        free(jobs);
        free(work);
        free(tids);
        return PyErr_NoMemory();
    }
    for (int t = 0; t < nt; t++) {
        jobs[t] = (Job){(const float *)(uintptr_t)px, (float *)(uintptr_t)pm, (float *)(uintptr_t)ps,
                        hw, c, slices, slice, units * t / nt, units * (t + 1) / nt,
                        work + (size_t)t * 3 * (size_t)slice, 0};
    }
    if (use_openmp)
        find_openmp();
    Team team = {jobs, nt, units};
    Py_BEGIN_ALLOW_THREADS
    if (nt == 1)
        run_units(&jobs[0]); /* one thread: the caller, no team or thread at all */
    else if (use_openmp && omp.parallel)
        omp.parallel(omp_body, &team, (unsigned)nt, 0);
    else {
        for (int t = 1; t < nt; t++)
            jobs[t].failed = pthread_create(&tids[t], NULL, thread_main, &jobs[t]) != 0;
        run_units(&jobs[0]);
        for (int t = 1; t < nt; t++) {
            if (jobs[t].failed)
                run_units(&jobs[t]); /* no thread to be had: this one does the share */
            else
                pthread_join(tids[t], NULL);
        }
    }
    Py_END_ALLOW_THREADS
    free(jobs);
    free(work);
    free(tids);
    Py_RETURN_NONE;
}

/* Which compiled variant the loader chose on this CPU (for benchmarks' records). */
static PyObject *variant(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    __builtin_cpu_init();
#ifdef TAPSTATS_AVX512
    if (__builtin_cpu_supports("x86-64-v4"))
        return PyUnicode_FromString("avx512");
#endif
    return PyUnicode_FromString(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "avx2+fma"
                                                                                               : "baseline");
#else
    return PyUnicode_FromString("baseline");
#endif
}

/* The OpenMP runtime file the kernel dispatches to (torch's), or None (it then uses pthreads). */
static PyObject *runtime(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    find_openmp();
    if (!omp.parallel)
        Py_RETURN_NONE;
    return PyUnicode_DecodeFSDefault(omp.path);
}

static PyMethodDef methods[] = {
    {"mean_std", mean_std, METH_VARARGS,
     "mean_std(x_ptr, n, hw, c, mean_ptr, std_ptr, threads, openmp): per-channel mean and unbiased std over "
     "hw of a contiguous (n, hw, c) float32 map into (n, c) float32 outputs, on `threads` threads of torch's "
     "OpenMP team (openmp true, where found) or pthreads; the caller guarantees the layout."},
    {"runtime", runtime, METH_NOARGS,
     "The path of torch's OpenMP runtime the kernel's threads come from, or None (pthreads are used)."},
    {"variant", variant, METH_NOARGS,
     "The kernel variant in use on this CPU: 'avx512', 'avx2+fma' or 'baseline'."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tapstats_native",
    "Native read-only kernel of the tap statistics (attiqa.models.backbones.spatial_mean_std).", -1, methods,
};

PyMODINIT_FUNC PyInit_tapstats_native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "VERSION", TAPSTATS_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
