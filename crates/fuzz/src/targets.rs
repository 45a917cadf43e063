//! One function per reader of outside bytes. Each returns whether the reader accepted the
//! input; a reader's typed error is a normal outcome, anything else (a panic, a hang, a
//! runaway allocation) is a finding. Where a reader accepts, the target also checks what
//! follows from it (a round trip through the writer, a prediction), so accepted garbage that
//! would break later is found too.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::Device;
use distill_data::{
    Dataset, LabelSet, Normalizer, TeacherLogits, TextEncoder, Tokenization, Vocab, VocabBuilder,
};
use distill_student::{
    BiLstmClassifier, Predictor, StudentConfig, StudentModel, StudentPreset, CONFIG_FILE,
};
use distill_teacher::{
    predict_logits, BertConfig, InferOptions, LoadOptions, Teacher, TeacherSource,
};
use rand::SeedableRng;

/// The teacher fixture the teacher target loads its weights and tokenizer from.
pub fn tiny_bert_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-bert")
}

/// A folder of this process for the target `name`, created on first use.
fn scratch(name: &str) -> PathBuf {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = ROOT.get_or_init(|| {
        // In memory where there is such a folder: the writers sync to disk, which would
        // otherwise cost more than the reading.
        let shm = Path::new("/dev/shm");
        let mut builder = tempfile::Builder::new();
        builder.prefix("distill-fuzz-");
        shm.is_dir()
            .then(|| builder.tempdir_in(shm).ok())
            .flatten()
            .map_or_else(|| builder.tempdir(), Ok)
            .expect("a temporary folder for the fuzz targets")
    });
    let dir = root.path().join(name);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("writing the input to a scratch file");
}

/// Reads `bytes` as a data file named `name`; an accepted file must survive a round trip
/// through [`Dataset::write_tsv_named`] unless the writer refuses it.
fn dataset(name: &str, bytes: &[u8]) -> bool {
    let dir = scratch("dataset");
    let path = dir.join(name);
    write(&path, bytes);
    let labels = LabelSet::binary();
    let Ok(data) = Dataset::read(&path, &labels) else {
        return false;
    };
    let _ = data.fingerprint();
    let out = dir.join("round-trip.tsv");
    if data.write_tsv_named(&out, &labels).is_ok() {
        let back = Dataset::read(&out, &labels).expect("a written data file reads back");
        assert_eq!(back.examples, data.examples, "round trip changed the data");
    }
    true
}

/// `Dataset::read` on a `.tsv` file.
pub fn dataset_tsv(bytes: &[u8]) -> bool {
    dataset("data.tsv", bytes)
}

/// `Dataset::read` on a `.csv` file.
pub fn dataset_csv(bytes: &[u8]) -> bool {
    dataset("data.csv", bytes)
}

/// `Dataset::read` on a `.jsonl` file (single texts or pairs; labels 0/1).
pub fn dataset_jsonl(bytes: &[u8]) -> bool {
    dataset("data.jsonl", bytes)
}

/// `vocab.json` through `TextEncoder::load` (words); an accepted vocabulary must encode and
/// survive a save and load.
pub fn vocab_json(bytes: &[u8]) -> bool {
    let dir = scratch("vocab_json");
    write(&dir.join("vocab.json"), bytes);
    let Ok(encoder) = TextEncoder::load(&dir, "words", true) else {
        return false;
    };
    let ids = encoder.encode("a charming 89-minute film , isn't it ?");
    assert!(ids.iter().all(|&id| (id as usize) < encoder.vocab.len()));
    let out = dir.join("saved.json");
    encoder
        .vocab
        .save(&out)
        .expect("an accepted vocabulary saves");
    assert_eq!(
        Vocab::load(&out).expect("a saved vocabulary loads"),
        encoder.vocab
    );
    true
}

/// A small trained-shape student: config, vocabulary and weights (seeded, untrained).
fn student(
    tokenization: Tokenization,
    sentences: &[&str],
    layers: usize,
    outputs: usize,
) -> StudentModel {
    let tokens: Vec<Vec<String>> = sentences.iter().map(|s| tokenization.tokens(s)).collect();
    let vocab = VocabBuilder::default().build(tokens.iter().map(Vec::as_slice));
    let mut config = StudentConfig::new(&StudentPreset::original(), vocab.len(), outputs);
    config.num_layers = layers;
    config.tokenizer = tokenization.name().into();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
    let tensors = BiLstmClassifier::init_tensors(&config, &mut rng, &Device::Cpu)
        .expect("fixture student tensors");
    let classifier = BiLstmClassifier::from_tensors(&config, &tensors).expect("fixture student");
    StudentModel {
        config,
        encoder: TextEncoder::new(tokenization, vocab),
        classifier,
    }
}

const SENTENCES: &[&str] = &[
    "it 's a charming and often affecting journey .",
    "unflinchingly bleak and desperate",
    "in exactly 89 minutes , most of which passed slowly",
];

/// The student folder whose `config.json` the student target replaces: vocabulary and
/// weights of the fixture student.
fn student_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("student_config").join("model");
        let model = student(Tokenization::Words(Normalizer::original()), SENTENCES, 1, 2);
        model.save_to(&dir).expect("saving the fixture student");
        dir
    })
}

/// A student's `config.json` through `StudentModel::load` (with the fixture's vocabulary
/// and weights); an accepted model must build a predictor that gives a probability.
pub fn student_config(bytes: &[u8]) -> bool {
    let dir = student_dir();
    write(&dir.join(CONFIG_FILE), bytes);
    let Ok(model) = StudentModel::load(dir, &Device::Cpu) else {
        return false;
    };
    let predictor = Predictor::new(&model).expect("a loaded student serves");
    let p = predictor.predict("a charming journey");
    assert!((0.0..=1.0).contains(&p.probability), "{p:?}");
    true
}

/// The folder whose `config.json` the teacher target replaces: links to the tiny BERT's
/// weights and tokenizer.
fn teacher_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("teacher_config");
        for name in [
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
        ] {
            let from = tiny_bert_dir().join(name);
            link_or_copy(&from, &dir.join(name));
        }
        dir
    })
}

fn link_or_copy(from: &Path, to: &Path) {
    #[cfg(unix)]
    if std::os::unix::fs::symlink(from, to).is_ok() {
        return;
    }
    std::fs::copy(from, to).expect("copying a teacher fixture file");
}

/// A teacher's `config.json` through `BertConfig` and `Teacher::from_source` (with the tiny
/// BERT's weights and tokenizer); an accepted teacher must give logits for two sentences
/// and write a config that reads back.
pub fn teacher_config(bytes: &[u8]) -> bool {
    let dir = teacher_dir();
    let path = dir.join("config.json");
    write(&path, bytes);
    if BertConfig::from_file(&path).is_err() {
        return false;
    }
    let source = TeacherSource::Dir(dir.to_path_buf());
    let Ok(teacher) = Teacher::from_source(source, &LoadOptions::default(), &Device::Cpu) else {
        return false;
    };
    let opts = InferOptions {
        batch_size: 8,
        progress: false,
    };
    let logits = predict_logits(&teacher, &["a charming journey", ""], &opts)
        .expect("a loaded teacher gives logits");
    assert_eq!(logits.len(), 2 * teacher.labels().len());
    let json = teacher
        .model
        .config()
        .to_classifier_json(teacher.labels())
        .to_string();
    BertConfig::from_json_str(&json, &path).expect("a written teacher config reads back");
    true
}

/// A teacher-logit cache through `TeacherLogits::load`; an accepted cache must give every
/// row and survive a save and load bit for bit.
pub fn logits_cache(bytes: &[u8]) -> bool {
    let dir = scratch("logits_cache");
    let path = dir.join("logits.safetensors");
    write(&path, bytes);
    let Ok(logits) = TeacherLogits::load(&path) else {
        return false;
    };
    let rows: usize = (0..logits.len()).map(|i| logits.row(i).len()).sum();
    assert_eq!(rows, logits.logits.len());
    let out = dir.join("saved.safetensors");
    logits.save(&out).expect("an accepted cache saves");
    let back = TeacherLogits::load(&out).expect("a saved cache loads");
    let bits = |l: &TeacherLogits| l.logits.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        (bits(&back), back.num_labels, &back.meta),
        (bits(&logits), logits.num_labels, &logits.meta)
    );
    true
}

/// The two students `predict` is fuzzed with: words (two layers, one output) and the tiny
/// BERT's WordPiece (one layer, two outputs).
fn predictors() -> &'static [Predictor; 2] {
    static P: OnceLock<[Predictor; 2]> = OnceLock::new();
    P.get_or_init(|| {
        let words = student(Tokenization::Words(Normalizer::original()), SENTENCES, 2, 1);
        let wordpiece = Tokenization::wordpiece(&tiny_bert_dir().join("tokenizer.json"))
            .expect("the tiny BERT's tokenizer");
        let wordpiece = student(wordpiece, SENTENCES, 1, 2);
        [
            Predictor::new(&words).expect("words predictor"),
            Predictor::new(&wordpiece).expect("wordpiece predictor"),
        ]
    })
}

/// `distill predict` on stdin: each line (`\n`, optionally `\r\n`, invalid UTF-8 replaced)
/// through both students' predictors, answered as a JSON line.
pub fn predict_stdin(bytes: &[u8]) -> bool {
    let predictors = predictors();
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        for predictor in predictors {
            let p = predictor.predict(&text);
            assert!(
                (0.0..=1.0).contains(&p.probability) && p.logits.iter().all(|v| v.is_finite()),
                "{p:?}"
            );
            let json = serde_json::json!({"text": text, "probabilities": p.probabilities});
            let _ = json.to_string();
        }
    }
    true
}
