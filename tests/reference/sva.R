# Reference outputs from R sva 3.46 (with limma 3.54) for manylm's surrogate variables, num_sv,
# nested-model F tests and residual structure.
#
# Run from the repository root:
#     Rscript tests/reference/sva.R
#
# Reads ../shared/data/bladderbatch/{expression.tsv.gz,samples.tsv} (rounded to float32, the
# values manylm ships in src/manylm/data/bladderbatch_expression.parquet) and
# tests/reference/inputs/pasilla_*; writes tests/reference/sva/*. Deterministic (set.seed).
# Numbers are written with 17 significant digits by reference_writers.R.

suppressPackageStartupMessages({
  library(sva)
  library(limma)
})

source(file.path("tests", "reference", "reference_writers.R"))
ref_dir <- file.path("tests", "reference")
out_dir <- file.path(ref_dir, "sva")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
shared <- file.path("..", "shared", "data", "bladderbatch")
out <- function(name) file.path(out_dir, name)

warn_log <- data.frame(case = character(0), warning = character(0), stringsAsFactors = FALSE)
quiet <- function(case, expr) {
  printed <- capture.output(value <- run_case(case, expr))
  for (line in printed[nzchar(trimws(printed))]) {
    warn_log[nrow(warn_log) + 1, ] <<- c(case, paste("printed:", trimws(line)))
  }
  invisible(value)
}

versions <- data.frame(
  name = c("R", "sva", "limma", "genefilter"),
  value = c(R.version.string, as.character(packageVersion("sva")),
            as.character(packageVersion("limma")), as.character(packageVersion("genefilter"))),
  stringsAsFactors = FALSE)
write_tsv(versions, out("versions.tsv"))
print(versions)

# ---------------------------------------------------------------------------------- inputs
# bladderbatch, rounded to float32 exactly as the shipped Parquet file (checked: all 1,270,131
# values are identical).
to_float32 <- function(m) {
  v <- readBin(writeBin(as.vector(m), raw(), size = 4), "double", size = 4, n = length(m))
  matrix(v, nrow(m), dimnames = dimnames(m))
}
raw_expr <- as.matrix(read.delim(file.path(shared, "expression.tsv.gz"), check.names = FALSE,
                                 row.names = 1))
edata <- to_float32(raw_expr)
rm(raw_expr)
pheno <- read.delim(file.path(shared, "samples.tsv"), row.names = 1, stringsAsFactors = FALSE)
stopifnot(identical(rownames(pheno), colnames(edata)))
pheno$batch <- factor(pheno$batch)
pheno$cancer <- factor(pheno$cancer, levels = c("Biopsy", "Cancer", "Normal"))
write_tsv(data.frame(name = c("n_features", "n_samples", colnames(edata)),
                     value = c(nrow(edata), ncol(edata), colSums(edata))),
          out("bladder_checksums.tsv"))

mod_cancer <- model.matrix(~ cancer, data = pheno)
mod_null <- model.matrix(~ 1, data = pheno)
mod_cancer_batch <- model.matrix(~ cancer + batch, data = pheno)
mod_batch <- model.matrix(~ batch, data = pheno)

counts <- as.matrix(read.delim(gzfile(file.path(ref_dir, "inputs", "pasilla_counts.tsv.gz")),
                               row.names = 1, check.names = FALSE))
pasilla <- read.delim(file.path(ref_dir, "inputs", "pasilla_samples.tsv"), row.names = 1,
                      stringsAsFactors = FALSE)
stopifnot(identical(rownames(pasilla), colnames(counts)))
counts <- counts[rowMeans(counts) > 1, ]  # as the svaseq vignette filters
mod_condition <- model.matrix(~ condition, data = pasilla)
mod_condition_type <- model.matrix(~ condition + type, data = pasilla)

# --------------------------------------------------------------------- num.sv "leek" tables
# num.sv's leek branch, step by step, to write its table of counts (rhat); checked against
# num.sv itself.
leek_rhat <- function(dat, mod) {
  dims <- dim(dat)
  a <- seq(0, 2, length = 100)
  n <- floor(dims[1] / 10)
  rhat <- matrix(0, nrow = 100, ncol = 10)
  P <- (diag(dims[2]) - mod %*% solve(t(mod) %*% mod) %*% t(mod))
  for (j in 1:10) {
    dats <- dat[1:(j * n), ]
    ee <- eigen(t(dats) %*% dats)
    sigbar <- ee$values[dims[2]] / (j * n)
    R <- dats %*% P
    wm <- (1 / (j * n)) * t(R) %*% R - P * sigbar
    ee <- eigen(wm)
    v <- c(rep(TRUE, 100), rep(FALSE, dims[2]))
    v <- v[order(c(a * (j * n)^(-1 / 3) * dims[2], ee$values), decreasing = TRUE)]
    u <- 1:length(v)
    w <- 1:100
    rhat[, j] <- rev((u[v == TRUE] - w))
  }
  rhat
}
leek_cases <- list(
  bladder_cancer = list(edata, mod_cancer),
  bladder_cancer_batch = list(edata, mod_cancer_batch),
  bladder_null = list(edata, mod_null),
  pasilla_condition = list(log(counts + 1), mod_condition),
  pasilla_condition_type = list(log(counts + 1), mod_condition_type))
leek_summary <- data.frame(case = character(0), num_sv = numeric(0), p = numeric(0),
                           row0_variance = numeric(0), stringsAsFactors = FALSE)
for (case in names(leek_cases)) {
  dat <- leek_cases[[case]][[1]]
  mod <- leek_cases[[case]][[2]]
  rhat <- leek_rhat(dat, mod)
  n_sv <- num.sv(dat, mod, method = "leek")
  rhat_check <- rhat
  # The selection rule of num.sv applied to the transcribed table gives num.sv's answer.
  ss <- rowVars(rhat_check)
  bumpstart <- which.max(ss > (2 * ss[1]))
  start <- which.max(c(rep(1e5, bumpstart), ss[(bumpstart + 1):100]) < 0.5 * ss[1])
  finish <- which.max(ss * c(rep(0, start), rep(1, 100 - start)) > ss[1])
  if (finish == 1) finish <- 100
  stopifnot(sva:::modefunc(rhat[start:finish, 10]) == n_sv)
  colnames(rhat) <- paste0("step", 1:10)
  rownames(rhat) <- sprintf("a%03d", 1:100)
  write_tsv(mat_df(rhat, "threshold"), out(paste0("leek_rhat_", case, ".tsv")))
  leek_summary[nrow(leek_summary) + 1, ] <- list(case, n_sv, ncol(mod), ss[1])
}
write_tsv(leek_summary, out("leek_num_sv.tsv"))
print(leek_summary)

# ---------------------------------------------------------- num.sv "be" with recorded permutations
# A small synthetic set: 300 features x 24 samples, group A/B, two strong hidden factors and a
# weak third one. The permutations num.sv(method = "be", seed = 11) draws are recorded (the
# same calls on the same seeded stream) and fed to a transcription of num.sv's be branch,
# checked to give num.sv's own answer.
set.seed(20261122)
G <- 300; n <- 24
group <- factor(rep(c("A", "B"), each = n / 2))
hidden <- cbind(rnorm(n), rnorm(n), rnorm(n))
loadings <- cbind(rnorm(G, sd = 1.2) * (runif(G) < 0.5), rnorm(G, sd = 0.8) * (runif(G) < 0.5),
                  rnorm(G, sd = 0.3))
be_y <- matrix(rnorm(G * n), G) + loadings %*% t(hidden) +
  outer(rnorm(G, sd = 1) * (runif(G) < 0.2), as.numeric(group == "B")) + 8
rownames(be_y) <- sprintf("f%03d", 1:G)
colnames(be_y) <- sprintf("s%02d", 1:n)
be_samples <- data.frame(sample = colnames(be_y), group = group)
write_tsv(mat_df(be_y, "feature"), out("be_expr.tsv.gz"))
write_tsv(be_samples, out("be_samples.tsv"))
be_mod <- model.matrix(~ group)

be_seed <- 11L; be_B <- 20L
H <- be_mod %*% solve(t(be_mod) %*% be_mod) %*% t(be_mod)
res <- be_y - t(H %*% t(be_y))
set.seed(be_seed)
perms <- lapply(seq_len(be_B), function(i) t(apply(res, 1, function(r) sample.int(length(r)))))
ndf <- min(G, n) - ceiling(sum(diag(H)))
be_from_perms <- function(res, H, perms, ndf) {
  uu <- svd(res)
  dstat <- uu$d[1:ndf]^2 / sum(uu$d[1:ndf]^2)
  dstat0 <- matrix(0, nrow = length(perms), ncol = ndf)
  for (i in seq_along(perms)) {
    res0 <- t(sapply(seq_len(nrow(res)), function(g) res[g, perms[[i]][g, ]]))
    res0 <- res0 - t(H %*% t(res0))
    uu0 <- svd(res0)
    dstat0[i, ] <- uu0$d[1:ndf]^2 / sum(uu0$d[1:ndf]^2)
  }
  psv <- rep(1, ncol(res))
  for (i in 1:ndf) psv[i] <- mean(dstat0[, i] >= dstat[i])
  for (i in 2:ndf) psv[i] <- max(psv[(i - 1)], psv[i])
  list(n_sv = sum(psv <= 0.1), psv = psv[1:ndf])
}
be_mine <- be_from_perms(res, H, perms, ndf)
be_r <- num.sv(be_y, be_mod, method = "be", B = be_B, seed = be_seed)
stopifnot(be_mine$n_sv == be_r)
perm_table <- do.call(rbind, lapply(seq_len(be_B), function(i) {
  df <- data.frame(permutation = i, feature = rownames(be_y), stringsAsFactors = FALSE)
  for (j in seq_len(n)) df[[paste0("i", j)]] <- perms[[i]][, j]
  df
}))
write_tsv(perm_table, out("be_permutations.tsv.gz"))
write_tsv(data.frame(component = seq_len(ndf), p_value = be_mine$psv), out("be_pvalues.tsv"))
be_summary <- data.frame(name = c("num_sv", "n_components", "seed", "B", "trace_H"),
                         value = c(be_r, ndf, be_seed, be_B, sum(diag(H))))

# num.sv "be" on the whole bladderbatch set for a few seeds: the distribution to compare with.
for (s in 1:5) {
  k <- num.sv(edata, mod_cancer, method = "be", seed = s)
  be_summary[nrow(be_summary) + 1, ] <- list(paste0("bladder_cancer_seed", s), k)
}
write_tsv(be_summary, out("be_num_sv.tsv"))
print(be_summary)

# ------------------------------------------------------------------------- sva and friends
limma_p <- function(dat, design, coefs) {
  fit <- eBayes(lmFit(dat, design))
  data.frame(feature = rownames(dat),
             limma_p = topTable(fit, coef = coefs, number = Inf, sort.by = "none")$P.Value,
             stringsAsFactors = FALSE)
}
write_sva <- function(case, sv, dat, mod, mod0, coefs, controls_used = NULL) {
  colnames(sv$sv) <- paste0("sv", seq_len(ncol(sv$sv)))
  write_tsv(data.frame(sample = colnames(dat), sv$sv, check.names = FALSE),
            out(paste0(case, "_sv.tsv")))
  if (!identical(as.numeric(sv$pprob.gam), as.numeric(controls_used))) {
    probs <- data.frame(feature = rownames(dat), pprob_gam = as.numeric(sv$pprob.gam),
                        stringsAsFactors = FALSE)
    if (!is.null(sv$pprob.b)) probs$pprob_b <- sv$pprob.b
    write_tsv(probs, out(paste0(case, "_pprob.tsv.gz")))
  }
  # limma with the SVs as adjustment variables; and sva's own F test (vignette: f.pvalue with
  # cbind(mod, sv) against cbind(mod0, sv)).
  design <- cbind(mod, sv$sv)
  pv <- limma_p(dat, design, coefs)
  pv$f_pvalue <- f.pvalue(dat, design, cbind(mod0, sv$sv))
  write_tsv(pv, out(paste0(case, "_pvalues.tsv.gz")))
}

quiet("irw_cancer", {
  sv <- sva(edata, mod_cancer, mod_null, n.sv = 2)
  write_sva("irw_cancer", sv, edata, mod_cancer, mod_null, 2:3)
})
quiet("irw_cancer_batch", {
  sv <- sva(edata, mod_cancer_batch, mod_batch, n.sv = 2)
  write_sva("irw_cancer_batch", sv, edata, mod_cancer_batch, mod_batch, 2:3)
})
quiet("two_step_cancer", {
  sv <- sva(edata, mod_cancer, mod_null, n.sv = 3, method = "two-step")
  write_sva("two_step_cancer", sv, edata, mod_cancer, mod_null, 2:3)
})
quiet("supervised_cancer", {
  # Controls: the p-value of the cancer F test (f.pvalue), so features unrelated to cancer
  # weigh most. Not written: it is f.pvalue(edata, mod_cancer, mod_null), which the tests
  # recompute; pprob.gam is the controls themselves, so it is not written either.
  controls <- f.pvalue(edata, mod_cancer, mod_null)
  sv <- sva(edata, mod_cancer, mod_null, n.sv = 2, controls = controls)
  write_sva("supervised_cancer", sv, edata, mod_cancer, mod_null, 2:3, controls)
})
quiet("svaseq_pasilla", {
  sv <- svaseq(counts, mod_condition, model.matrix(~ 1, data = pasilla), n.sv = 2)
  write_sva("svaseq_pasilla", sv, log(counts + 1), mod_condition,
            model.matrix(~ 1, data = pasilla), 2)
})
write_tsv(data.frame(feature = rownames(counts)), out("svaseq_pasilla_features.tsv.gz"))

# f.pvalue on its own: cancer tested with batch as the adjustment.
write_tsv(data.frame(feature = rownames(edata),
                     p_value = f.pvalue(edata, mod_cancer_batch, mod_batch)),
          out("f_pvalue_cancer_batch.tsv.gz"))

# --------------------------------------------------------------------- residual structure
# Principal components of the residuals of ~ cancer (prcomp of the samples), and R^2 / F-test
# p of lm(PC ~ variable) for batch, outcome, cancer and the irw_cancer SVs.
fit <- lm.fit(mod_cancer, t(edata))
resid <- t(fit$residuals)
pca <- prcomp(t(resid))
k <- 10
variance <- pca$sdev^2 / sum(pca$sdev^2)
write_tsv(data.frame(component = paste0("PC", 1:k), variance_explained = variance[1:k]),
          out("residual_variance.tsv"))
write_tsv(data.frame(sample = colnames(edata), pca$x[, 1:k], check.names = FALSE),
          out("residual_scores.tsv"))
irw_sv <- read.delim(out("irw_cancer_sv.tsv"), row.names = 1)
variables <- list(batch = pheno$batch, outcome = factor(pheno$outcome), cancer = pheno$cancer,
                  sv1 = irw_sv$sv1, sv2 = irw_sv$sv2)
r2 <- pv <- matrix(NA_real_, k, length(variables),
                   dimnames = list(paste0("PC", 1:k), names(variables)))
for (i in 1:k) for (v in names(variables)) {
  s <- summary(lm(pca$x[, i] ~ variables[[v]]))
  r2[i, v] <- s$r.squared
  f <- s$fstatistic
  pv[i, v] <- pf(f[1], f[2], f[3], lower.tail = FALSE)
}
write_tsv(mat_df(r2, "component"), out("residual_r_squared.tsv"))
write_tsv(mat_df(pv, "component"), out("residual_p_values.tsv"))

write_tsv(warn_log, out("warnings.tsv"))
cat("done\n")
