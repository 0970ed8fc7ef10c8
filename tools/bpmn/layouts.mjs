// Grid positions for tools/bpmn/layout.mjs, one entry per BPMN file in workflows/.
//
// at: [col, row]            centre of a flow node on the grid (fractions allowed; rows may be negative)
// box: {cols: [a, b], rows: [r1, r2]}   an expanded sub-process drawn around those grid cells
// on: [host, col]           a boundary event on the bottom edge of `host`, centred on `col`
// label: 'below' (default) | 'above' | 'left' | 'right' | 'above-left' | 'above-right' |
//        'below-left' | 'below-right'   (where an event's or gateway's name goes)
//
// Flows are routed automatically (straight when aligned, otherwise vertical-then-horizontal
// from gateways and boundary events, horizontal-then-vertical from anything else). Override
// with flows[id]:
//   route: 'vh' | 'hv'              force one of the two elbow shapes
//   channel: row                    leave the source vertically, run along `row`, enter the target vertically
//   labelSegment: n                 put the flow's name on segment n (default 0)
export default {
  'dispute_case.bpmn': {
    nodes: {
      case_reported: { at: [0, 0] },
      gw_on_spot: { at: [1, 0], label: 'below' },
      archive_on_spot: { at: [1, -1] },
      end_on_spot: { at: [2, -1] },
      init_case: { at: [2, 0] },
      gw_level_loop: { at: [3, 0], label: 'above-left' },
      enter_level: { at: [4, 0] },
      call_handle_level: { at: [5, 0] },
      gw_outcome: { at: [6, 0], label: 'above-left' },
      archive_duplicate: { at: [6, -1] },
      end_duplicate: { at: [7, -1] },
      verify: { at: [7, 0] },
      gw_satisfied: { at: [8, 0], label: 'below' },
      record_rework: { at: [8, -1] },
      archive_satisfied: { at: [9, 0] },
      end_satisfied: { at: [10, 0] },
      gw_top_level: { at: [6, 1], label: 'left' },
      final_disposition: { at: [7, 1] },
      archive_final: { at: [8, 1] },
      end_final: { at: [9, 1] },
      escalate: { at: [6, 2] },
    },
    flows: {
      flow_rework: { channel: -1.75 },
      flow_escalated: { route: 'hv' },
    },
  },
  'handle_level.bpmn': {
    nodes: {
      level_start: { at: [0, 0] },
      lookup_time_limits: { at: [1, 0] },
      set_deadlines: { at: [2, 0] },
      level_work: { box: { cols: [3, 9], rows: [0, 1] } },
      work_start: { at: [3, 0] },
      dispatch: { at: [4, 0] },
      gw_dispatch_action: { at: [5, 0], label: 'above' },
      record_dispatch: { at: [6, 0] },
      mediate: { at: [7, 0] },
      collect_mediation: { at: [8, 0] },
      work_end: { at: [9, 0] },
      mark_duplicate: { at: [6, 1] },
      work_end_duplicate: { at: [7, 1] },
      end_level: { at: [10.2, 0] },
      warning_timer: { on: ['level_work', 3.6], label: 'below-right' },
      open_supervision: { at: [4.6, 2.4] },
      supervise: { at: [5.6, 2.4] },
      record_urge: { at: [6.6, 2.4] },
      end_supervised: { at: [7.6, 2.4] },
      overdue_timer: { on: ['level_work', 8.8], label: 'below-right' },
      mark_overdue: { at: [8.8, 3.4] },
      end_overdue: { at: [9.8, 3.4] },
    },
    flows: {},
  },
  'special_visit.bpmn': {
    nodes: {
      flagged: { at: [0, 0] }, gw_schedule: { at: [1, 0], label: 'above-left' }, lookup_interval: { at: [2, 0] },
      set_schedule: { at: [3, 0] }, gw_round: { at: [4, 0], label: 'above' },
      visit_round: { box: { cols: [5, 12], rows: [0, 1] } }, round_start: { at: [5, 0] },
      gw_wait: { at: [6, 0], label: 'above' }, wait_open: { at: [7, 0] }, gw_open: { at: [8, 0], label: 'above' },
      visit: { at: [9, 0] }, record_visit: { at: [10, 0] }, round_end: { at: [11, 0] },
      visit_overdue: { on: ['visit', 9], label: 'below-left' }, warn_grid_head: { at: [9, 1] },
      urge_visit: { at: [10, 1] }, record_urge: { at: [11, 1] }, urge_end: { at: [12, 1] },
      gw_renew: { at: [13, 0], label: 'below' }, renew_schedule: { at: [14, 0] }, renewed_end: { at: [15, 0] },
      resident_moved: { on: ['visit_round', 6], label: 'below-right' }, apply_move: { at: [6, 2.4] },
      risk_changed: { on: ['visit_round', 8], label: 'below-right' }, apply_risk: { at: [8, 3.4] },
      unflagged: { on: ['visit_round', 11], label: 'below-right' }, end_schedule: { at: [11, 2.4] },
      schedule_end: { at: [12, 2.4] },
    },
    flows: {
      flow_open_now: { channel: 0.55, labelSegment: 1 }, flow_next_round: { channel: -1, labelSegment: 1 },
      flow_move_applied: { route: 'hv' }, flow_risk_applied: { route: 'hv' },
    },
  },
};
