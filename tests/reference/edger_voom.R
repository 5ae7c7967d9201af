# Reference outputs from R edgeR / limma count handling for the Python
# re-implementation (manylm): calcNormFactors, filterByExpr, cpm, voom.
#
# Run from the repository root:
#     Rscript tests/reference/edger_voom.R
#
# Inputs:
#   - pasilla gene counts. If the directory $PASILLA_DIR (default
#     /tmp/pas/inmoose-0.9.1/inmoose/data/pasilla, the unpacked inmoose 0.9.1
#     PyPI sdist) exists, tests/reference/inputs/pasilla_counts.tsv.gz and
#     pasilla_samples.tsv are (re)written from it. Otherwise the existing
#     files under tests/reference/inputs/ are read.
#   - synthetic counts, simulated here with set.seed(42) and written to
#     tests/reference/inputs/synth_counts.tsv.gz / synth_counts_samples.tsv.
# Outputs: tests/reference/edger/*
# All numbers are written with 17 significant digits ("%.17g"), missing as NA.
# Tab separated, header row. Deterministic (gzip streams carry no timestamp).

suppressPackageStartupMessages({
  library(limma)
  library(edgeR)
})

ref_dir <- file.path("tests", "reference")
in_dir <- file.path(ref_dir, "inputs")
out_dir <- file.path(ref_dir, "edger")
dir.create(in_dir, showWarnings = FALSE, recursive = TRUE)
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

pasilla_dir <- Sys.getenv("PASILLA_DIR",
                          "/tmp/pas/inmoose-0.9.1/inmoose/data/pasilla")

cat(R.version.string, "\n")
cat("limma", as.character(packageVersion("limma")), "\n")
cat("edgeR", as.character(packageVersion("edgeR")), "\n")

# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------

source(file.path("tests", "reference", "reference_writers.R"))

# Integer count matrix -> data.frame with `feature` first, integer columns
counts_df <- function(m) {
  df <- data.frame(feature = rownames(m), stringsAsFactors = FALSE)
  for (j in seq_len(ncol(m))) {
    x <- m[, j]
    stopifnot(all(x == round(x)), all(abs(x) < .Machine$integer.max))
    df[[colnames(m)[j]]] <- as.integer(x)
  }
  df
}

# Print warnings / messages with a label, and collect them
cond_log <- character(0)
logged <- function(label, expr) {
  withCallingHandlers(expr,
    warning = function(w) {
      msg <- gsub("[\r\n]+", " ", conditionMessage(w))
      cat("[", label, "] warning: ", msg, "\n", sep = "", file = stderr())
      cond_log <<- c(cond_log, paste0(label, ": warning: ", msg))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      msg <- gsub("[\r\n]+", " ", trimws(conditionMessage(m)))
      cat("[", label, "] message: ", msg, "\n", sep = "", file = stderr())
      cond_log <<- c(cond_log, paste0(label, ": message: ", msg))
      invokeRestart("muffleMessage")
    })
}

# ---------------------------------------------------------------------------
# Inputs: pasilla
# ---------------------------------------------------------------------------

pas_counts_path <- file.path(in_dir, "pasilla_counts.tsv.gz")
pas_samples_path <- file.path(in_dir, "pasilla_samples.tsv")

if (dir.exists(pasilla_dir)) {
  cat("reading pasilla from", pasilla_dir, "\n")
  raw <- read.delim(file.path(pasilla_dir, "pasilla_gene_counts.tsv"),
                    check.names = FALSE, stringsAsFactors = FALSE)
  stopifnot(colnames(raw)[1] == "gene_id", ncol(raw) == 8L, nrow(raw) == 14599L)
  pas <- as.matrix(raw[, -1])
  rownames(pas) <- raw$gene_id
  ann <- read.csv(file.path(pasilla_dir, "pasilla_sample_annotation.csv"),
                  check.names = FALSE, stringsAsFactors = FALSE)
  ann$sample <- sub("fb$", "", ann$file)
  ann <- ann[match(colnames(pas), ann$sample), ]
  stopifnot(identical(ann$sample, colnames(pas)))
  pas_samples <- data.frame(sample = ann$sample,
                            condition = ann$condition,
                            type = gsub("-", "_", ann$type),
                            stringsAsFactors = FALSE)
  write_tsv(counts_df(pas), pas_counts_path)
  write_tsv(pas_samples, pas_samples_path)
}
raw <- read.delim(pas_counts_path, check.names = FALSE, stringsAsFactors = FALSE)
pas <- as.matrix(raw[, -1])
rownames(pas) <- raw$feature
pas_samples <- read.delim(pas_samples_path, stringsAsFactors = FALSE)
stopifnot(identical(pas_samples$sample, colnames(pas)))
pas_samples$condition <- factor(pas_samples$condition, levels = c("untreated", "treated"))
pas_samples$type <- factor(pas_samples$type, levels = c("paired_end", "single_read"))

# ---------------------------------------------------------------------------
# Inputs: synthetic counts
# ---------------------------------------------------------------------------

set.seed(42)
ng <- 3000L
ns <- 12L
snames <- sprintf("S%02d", seq_len(ns))
gnames <- sprintf("gene%04d", seq_len(ng))
syn_samples <- data.frame(sample = snames,
                          group = rep(c("A", "B"), 6),
                          batch = rep(c("b1", "b2", "b3"), each = 4),
                          stringsAsFactors = FALSE)
lib <- round(2e6 * 5^sample(seq(0, 1, length.out = ns)))  # depths 2e6..1e7 (5-fold)
base <- rlnorm(ng, meanlog = 0, sdlog = 2.2)            # heavy-tailed; many low counts
base_prop <- 0.9 * base / sum(base)                    # expected share of each library
disp <- exp(runif(ng, log(0.05), log(0.5)))             # NB dispersion 0.05-0.5
batch_eff <- matrix(rlnorm(ng * 3, 0, 0.2), ng, 3)      # mild gene-wise batch effect
# special rows (disjoint index sets)
perm <- sample.int(ng)
idx_zero <- sort(perm[1:50])                            # all zeros
idx_single <- sort(perm[51:70])                         # nonzero in one sample only
idx_huge <- perm[71]                                    # very large counts
idx_de <- sort(perm[72:371])                            # 300 DE genes (10%)
de_sign <- sample(c(-1, 1), length(idx_de), replace = TRUE)
logfc <- numeric(ng)
logfc[idx_de] <- de_sign                                # 2-fold (log2 = +/-1) in group B
isB <- syn_samples$group == "B"
bidx <- match(syn_samples$batch, c("b1", "b2", "b3"))
mu <- outer(base_prop, lib) * batch_eff[, bidx] * 2^(outer(logfc, as.numeric(isB)))
mu[idx_huge, ] <- lib * 0.1 * batch_eff[idx_huge, bidx]   # ~10% of each library
syn <- matrix(rnbinom(ng * ns, size = rep(1 / disp, ns), mu = as.vector(mu)), ng, ns)
syn[idx_zero, ] <- 0
syn[idx_single, ] <- 0
single_col <- sample.int(ns, length(idx_single), replace = TRUE)
syn[cbind(idx_single, single_col)] <- sample(1:60, length(idx_single), replace = TRUE)
dimnames(syn) <- list(gnames, snames)
storage.mode(syn) <- "double"
write_tsv(counts_df(syn), file.path(in_dir, "synth_counts.tsv.gz"))
write_tsv(syn_samples, file.path(in_dir, "synth_counts_samples.tsv"))
cat("synth: all-zero rows", sum(rowSums(syn) == 0),
    "; single-sample rows", sum(rowSums(syn > 0) == 1),
    "; huge row", gnames[idx_huge], "max", max(syn[idx_huge, ]), "\n")
cat("synth: forced all-zero:", gnames[idx_zero], "\n")
cat("synth: forced single-sample:", gnames[idx_single], "\n")
cat("synth: DE genes:", length(idx_de), "; lib sizes", colSums(syn), "\n")
cat("synth: median count", median(syn), "; fraction of rows with mean < 5:",
    mean(rowMeans(syn) < 5), "\n")
syn_samples$group <- factor(syn_samples$group, levels = c("A", "B"))
syn_samples$batch <- factor(syn_samples$batch, levels = c("b1", "b2", "b3"))

datasets <- list(
  pasilla = list(counts = pas, group = pas_samples$condition,
                 design = model.matrix(~ condition + type, data = pas_samples)),
  synth = list(counts = syn, group = syn_samples$group,
               design = model.matrix(~ group + batch, data = syn_samples))
)
for (nm in names(datasets)) {
  rownames(datasets[[nm]]$design) <- colnames(datasets[[nm]]$counts)
}

# ---------------------------------------------------------------------------
# a) calcNormFactors
# ---------------------------------------------------------------------------

nf_rows <- list()
for (nm in names(datasets)) {
  x <- datasets[[nm]]$counts
  for (meth in c("TMM", "TMMwsp", "upperquartile", "RLE", "none", "TMM_ref1")) {
    f <- logged(paste0("calcNormFactors ", nm, " ", meth),
                if (meth == "TMM_ref1") calcNormFactors(x, method = "TMM", refColumn = 1)
                else calcNormFactors(x, method = meth))
    nf_rows[[length(nf_rows) + 1]] <- data.frame(
      dataset = nm, method = meth, sample = colnames(x),
      lib_size = colSums(x), norm_factor = unname(f), stringsAsFactors = FALSE)
  }
}
nf <- do.call(rbind, nf_rows)
write_tsv(nf, file.path(out_dir, "norm_factors.tsv"))

# ---------------------------------------------------------------------------
# b) filterByExpr
# ---------------------------------------------------------------------------

fe_rows <- list()
n_kept <- data.frame(dataset = character(0), variant = character(0),
                     kept = integer(0), stringsAsFactors = FALSE)
for (nm in names(datasets)) {
  x <- datasets[[nm]]$counts
  g <- datasets[[nm]]$group
  des <- datasets[[nm]]$design
  for (variant in c("group", "design", "default", "mincount")) {
    keep <- logged(paste0("filterByExpr ", nm, " ", variant), switch(variant,
      group = filterByExpr(x, group = g),
      design = filterByExpr(x, design = des),
      default = filterByExpr(x),
      mincount = filterByExpr(x, group = g, min.count = 5, min.total.count = 20)))
    fe_rows[[length(fe_rows) + 1]] <- data.frame(
      dataset = nm, variant = variant, feature = rownames(x),
      keep = as.logical(keep), stringsAsFactors = FALSE)
    n_kept[nrow(n_kept) + 1, ] <- list(nm, variant, sum(keep))
  }
}
write_tsv(do.call(rbind, fe_rows), file.path(out_dir, "filter_by_expr.tsv.gz"))
print(n_kept)

# ---------------------------------------------------------------------------
# c) cpm / log-cpm with TMM factors (first 500 genes)
# ---------------------------------------------------------------------------

for (nm in names(datasets)) {
  d <- DGEList(datasets[[nm]]$counts)
  d <- calcNormFactors(d)
  lc <- cpm(d, log = TRUE, prior.count = 2)[1:500, , drop = FALSE]
  cc <- cpm(d, log = FALSE)[1:500, , drop = FALSE]
  df <- data.frame(feature = rownames(lc), stringsAsFactors = FALSE)
  for (s in colnames(lc)) df[[paste0("logcpm:", s)]] <- lc[, s]
  for (s in colnames(cc)) df[[paste0("cpm:", s)]] <- cc[, s]
  write_tsv(df, file.path(out_dir, paste0("log_cpm_", nm, ".tsv.gz")))
}

# ---------------------------------------------------------------------------
# d) voom + lmFit + eBayes
# ---------------------------------------------------------------------------

for (nm in names(datasets)) {
  lab <- paste0("voom ", nm)
  design <- datasets[[nm]]$design
  d <- DGEList(datasets[[nm]]$counts)
  keep <- logged(lab, filterByExpr(d, group = datasets[[nm]]$group))
  d <- d[keep, , keep.lib.sizes = FALSE]
  d <- calcNormFactors(d)
  v <- logged(lab, voom(d, design, save.plot = TRUE))
  cat(nm, ": voom on", nrow(v$E), "genes\n")
  write_tsv(mat_df(design, "sample"), file.path(out_dir, paste0("voom_", nm, "_design.tsv")))
  write_tsv(mat_df(v$E, "feature"), file.path(out_dir, paste0("voom_", nm, "_E.tsv.gz")))
  w <- v$weights
  dimnames(w) <- dimnames(v$E)
  write_tsv(mat_df(w, "feature"), file.path(out_dir, paste0("voom_", nm, "_weights.tsv.gz")))
  stopifnot(length(v$voom.xy$x) == length(v$voom.line$x),
            identical(names(v$voom.xy$x), rownames(v$E)))
  write_tsv(data.frame(feature = names(v$voom.xy$x),
                       sx = unname(v$voom.xy$x), sy = unname(v$voom.xy$y),
                       line_x = v$voom.line$x, line_y = v$voom.line$y,
                       stringsAsFactors = FALSE),
            file.path(out_dir, paste0("voom_", nm, "_trend.tsv.gz")))
  lib_used <- d$samples$lib.size * d$samples$norm.factors
  stopifnot(isTRUE(all.equal(lib_used, v$targets$lib.size, tolerance = 0)))
  write_tsv(data.frame(sample = colnames(d), lib_size = lib_used,
                       lib_size_raw = d$samples$lib.size,
                       norm_factor = d$samples$norm.factors,
                       stringsAsFactors = FALSE),
            file.path(out_dir, paste0("voom_", nm, "_libsize.tsv")))
  fit <- logged(lab, lmFit(v, design))
  eb <- logged(lab, eBayes(fit))
  tt <- topTable(eb, coef = 2, number = Inf, sort.by = "none", confint = TRUE)
  stopifnot(identical(rownames(tt), rownames(v$E)))
  write_tsv(cbind(data.frame(feature = rownames(tt), stringsAsFactors = FALSE), tt),
            file.path(out_dir, paste0("voom_", nm, "_top.tsv.gz")))
  cat(nm, ": coef", colnames(design)[2], "; df.prior", eb$df.prior,
      "; s2.prior", eb$s2.prior, "\n")
}

cat("\nTMM factors (pasilla):\n")
print(nf[nf$dataset == "pasilla" & nf$method == "TMM", c("sample", "lib_size", "norm_factor")],
      digits = 17)
cat("\nConditions logged:", length(cond_log), "\n")
if (length(cond_log)) writeLines(cond_log)
